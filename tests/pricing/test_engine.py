"""The pricing engine, pure: totals add up in minor units, never negative, the same in every channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.pricing.engine import LineInput, Promotion, PromotionKind, price_cart

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
CHANNELS = ("web", "mobile", "store", "call-center")
CENT = Decimal("0.01")

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2)
lines = st.lists(
    st.builds(
        LineInput,
        key=st.integers(1, 10**6),
        variant_id=st.integers(1, 50),
        product_id=st.integers(1, 10),
        category_id=st.integers(1, 4) | st.none(),
        unit_price=prices,
        quantity=st.integers(1, 99),
    ),
    max_size=8,
)


@st.composite
def promotions(draw: st.DrawFn) -> list[Promotion]:
    found = []
    for pid in range(1, draw(st.integers(0, 4)) + 1):
        kind = draw(st.sampled_from([PromotionKind.PERCENTAGE, PromotionKind.FIXED_AMOUNT]))
        value = draw(st.decimals(min_value=0, max_value=100, places=2) if kind == PromotionKind.PERCENTAGE else prices)
        found.append(
            Promotion(
                id=pid,
                description=f"promo {pid}",
                kind=kind,
                value=value,
                currency="PLN",
                code=draw(st.sampled_from([None, f"CODE{pid}"])),
                min_subtotal=draw(st.none() | prices),
                product_ids=frozenset(draw(st.sets(st.integers(1, 10), max_size=3))),
                category_ids=frozenset(draw(st.sets(st.integers(1, 4), max_size=2))),
            )
        )
    return found


@settings(max_examples=300, deadline=None)
@given(lines=lines, promos=promotions(), data=st.data())
def test_totals_add_up_in_minor_units_never_negative_and_are_the_same_in_every_channel(lines, promos, data):
    codes = data.draw(st.lists(st.sampled_from([f"CODE{i}" for i in range(1, 6)]), max_size=5))
    results = [price_cart(lines, promos, codes, currency="PLN", channel=c, now=NOW) for c in CHANNELS]
    assert all(r == results[0] for r in results)
    cart = results[0]
    amounts = [cart.subtotal, cart.total, cart.discount_total, *(d.amount for d in cart.discounts)]
    amounts += [a for line in cart.lines for a in (line.subtotal, line.discount, line.total, line.unit_price)]
    assert all(a == a.quantize(CENT) and a.as_tuple().exponent == -2 for a in amounts)
    assert cart.total >= 0 and all(line.total >= 0 for line in cart.lines)
    assert cart.subtotal == sum((line.subtotal for line in cart.lines), Decimal("0.00"))
    assert cart.total == cart.subtotal - sum((d.amount for d in cart.discounts), Decimal("0.00"))
    assert cart.total == sum((line.total for line in cart.lines), Decimal("0.00"))
    for given_line, priced in zip(lines, cart.lines, strict=True):
        assert priced.subtotal == given_line.unit_price * given_line.quantity
        assert priced.total == priced.subtotal - priced.discount and priced.discount >= 0
    assert cart.discount_total == sum((d.amount for d in cart.discounts), Decimal("0.00"))
    assert all(d.amount > 0 for d in cart.discounts)


def _line(key: int, price: str, quantity: int = 1, category: int | None = 1, product: int = 1) -> LineInput:
    return LineInput(key, key, product, category, Decimal(price), quantity)


def test_percentage_rounds_half_up_and_the_remainder_goes_to_the_largest_share():
    ten = Promotion(1, "10% off", PromotionKind.PERCENTAGE, Decimal(10), code="WELCOME10")
    cart = price_cart(
        [_line(1, "0.35"), _line(2, "0.70")], [ten], ["welcome10"], currency="PLN", channel="web", now=NOW
    )
    assert cart.discounts[0].amount == Decimal("0.11")  # 10% of 1.05 = 0.105 -> 0.11 (half-up)
    assert [line.discount for line in cart.lines] == [Decimal("0.04"), Decimal("0.07")]
    assert cart.total == Decimal("0.94")


def test_scope_minimum_window_and_channel_rules():
    kitchen = Promotion(
        1, "kitchen 5 off", PromotionKind.FIXED_AMOUNT, Decimal(5), currency="PLN", category_ids=frozenset({2})
    )
    big = Promotion(2, "20% over 100", PromotionKind.PERCENTAGE, Decimal(20), code="BIG", min_subtotal=Decimal(100))
    app_only = Promotion(
        3, "app 1 off", PromotionKind.FIXED_AMOUNT, Decimal(1), code="APP", channels=frozenset({"mobile"})
    )
    later = Promotion(
        4, "later", PromotionKind.PERCENTAGE, Decimal(50), code="LATER", starts_at=NOW + timedelta(days=1)
    )
    used_up = Promotion(5, "once", PromotionKind.PERCENTAGE, Decimal(50), code="ONCE", usage_limit_per_customer=1)
    lines = [_line(1, "30.00", category=2), _line(2, "50.00", category=3)]
    codes = ["BIG", "APP", "LATER", "ONCE", "NOPE"]
    web = price_cart(
        lines,
        [kitchen, big, app_only, later, used_up],
        codes,
        currency="PLN",
        channel="web",
        now=NOW,
        customer_usage={5: 1},
    )
    assert [d.description for d in web.discounts] == ["kitchen 5 off"]
    assert web.lines[0].discount == Decimal("5.00") and web.lines[1].discount == 0
    assert web.unapplied_codes == {
        "BIG": "DISCOUNT_MIN_SUBTOTAL_NOT_MET",
        "APP": "DISCOUNT_CODE_NOT_IN_CHANNEL",
        "LATER": "DISCOUNT_CODE_EXPIRED",
        "ONCE": "DISCOUNT_CODE_USAGE_LIMIT_REACHED",
        "NOPE": "DISCOUNT_CODE_INVALID",
    }
    mobile = price_cart(lines, [kitchen, big, app_only], ["APP"], currency="PLN", channel="mobile", now=NOW)
    assert mobile.total == Decimal("74.00")


def test_a_fixed_discount_larger_than_the_cart_stops_at_zero():
    huge = Promotion(1, "1000 off", PromotionKind.FIXED_AMOUNT, Decimal(1000), currency="PLN")
    cart = price_cart([_line(1, "9.99", 3)], [huge], [], currency="PLN", channel="web", now=NOW)
    assert cart.total == Decimal("0.00") and cart.discounts[0].amount == Decimal("29.97")


def test_a_code_is_valid_from_its_start_inclusive_to_its_end_exclusive_whatever_the_time_zone():
    from zoneinfo import ZoneInfo

    warsaw = ZoneInfo("Europe/Warsaw")
    start = NOW.astimezone(warsaw)  # the same instant, written in local time
    window = Promotion(
        1,
        "weekend",
        PromotionKind.PERCENTAGE,
        Decimal(10),
        code="WKND",
        starts_at=start,
        ends_at=start + timedelta(days=2),
    )
    line = [_line(1, "10.00")]

    def problem(at: datetime) -> str | None:
        return price_cart(line, [window], ["WKND"], currency="PLN", channel="web", now=at).unapplied_codes.get("WKND")

    assert problem(NOW - timedelta(microseconds=1)) == "DISCOUNT_CODE_EXPIRED"
    assert problem(NOW) is None
    assert problem(NOW + timedelta(days=2) - timedelta(microseconds=1)) is None
    assert problem(NOW + timedelta(days=2)) == "DISCOUNT_CODE_EXPIRED"


def test_fixed_discounts_together_larger_than_the_cart_never_go_below_zero_and_later_ones_get_nothing():
    first = Promotion(1, "8 off", PromotionKind.FIXED_AMOUNT, Decimal(8), currency="PLN")
    second = Promotion(2, "5 off", PromotionKind.FIXED_AMOUNT, Decimal(5), code="FIVE", currency="PLN")
    third = Promotion(3, "50%", PromotionKind.PERCENTAGE, Decimal(50), code="HALF")
    cart = price_cart(
        [_line(1, "3.33"), _line(2, "6.67")],
        [first, second, third],
        ["FIVE", "HALF"],
        currency="PLN",
        channel="web",
        now=NOW,
    )
    assert [(d.promotion_id, d.amount) for d in cart.discounts] == [(1, Decimal("8.00")), (2, Decimal("2.00"))]
    assert cart.total == Decimal("0.00") and all(line.total == 0 for line in cart.lines)


def test_a_currency_without_minor_units_rounds_to_whole_units():
    ten = Promotion(1, "10% off", PromotionKind.PERCENTAGE, Decimal(10), code="TEN")
    cart = price_cart([_line(1, "1005"), _line(2, "3")], [ten], ["TEN"], currency="JPY", channel="web", now=NOW)
    assert cart.discounts[0].amount == Decimal("101")  # 100.8 -> 101
    assert [line.total for line in cart.lines] == [
        Decimal("904"),
        Decimal("3"),
    ]  # 100.7 + 0.3: the leftover unit to the larger remainder
    assert cart.total == Decimal("907") and cart.total.as_tuple().exponent == 0
