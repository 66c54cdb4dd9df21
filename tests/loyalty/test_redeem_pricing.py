"""Points to redeem are a discount inside the one pricing engine: after promotions, spread over the
lines, capped by the policy's share; more than the share is a user error naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce.pricing.engine import LineInput, LoyaltyRedemption, Promotion, PromotionKind, price_cart
from commerce.pricing.errors import PointsNotRedeemableHere, PointsOverShare

NOW = datetime(2026, 11, 30, tzinfo=UTC)
TERMS = {"point_value": Decimal("0.01"), "max_share": Decimal("0.5"), "currency": "PLN"}


def _line(key: int, price: str, quantity: int = 1) -> LineInput:
    return LineInput(key, key, key, None, Decimal(price), quantity)


def _price(lines: list[LineInput], points: int, promotions: list[Promotion] | None = None, currency: str = "PLN"):
    return price_cart(
        lines,
        promotions or [],
        [],
        currency=currency,
        channel="web",
        now=NOW,
        loyalty=LoyaltyRedemption(points, **TERMS),  # type: ignore[arg-type]
    )


def test_points_come_after_promotions_and_are_shared_over_the_lines() -> None:
    tenth = Promotion(id=1, description="10%", kind=PromotionKind.PERCENTAGE, value=Decimal(10))
    cart = _price([_line(1, "100.00"), _line(2, "50.00")], 5000, [tenth])  # 150 -> 135 -> 85
    assert cart.loyalty_points == 5000 and cart.loyalty_discount == Decimal("50.00")
    assert cart.discount_total == Decimal("65.00") and cart.total == Decimal("85.00")
    assert [line.total for line in cart.lines] == [Decimal("56.67"), Decimal("28.33")]
    assert sum(line.total for line in cart.lines) == cart.total
    assert [d.promotion_id for d in cart.discounts] == [1]  # points are no promotion


def test_more_than_the_policys_share_is_refused_naming_the_field() -> None:
    cart = _price([_line(1, "100.00")], 5000)
    assert cart.total == Decimal("50.00")
    with pytest.raises(PointsOverShare) as refused:
        _price([_line(1, "100.00")], 5001)
    assert refused.value.field == ("input", "loyaltyPointsToRedeem") and refused.value.most == 5000
    assert refused.value.code == "LOYALTY_POINTS_OVER_SHARE"


def test_points_pay_only_in_the_programmes_currency() -> None:
    with pytest.raises(PointsNotRedeemableHere):
        _price([_line(1, "100.00")], 10, currency="EUR")


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2), min_size=1, max_size=6
    ),
    points=st.integers(min_value=0, max_value=200_000),
)
def test_lines_always_add_up_and_points_never_pay_more_than_the_share(prices: list[Decimal], points: int) -> None:
    lines = [_line(i + 1, str(p)) for i, p in enumerate(prices)]
    try:
        cart = _price(lines, points)
    except PointsOverShare as refused:
        assert points * Decimal("0.01") > sum(prices) * Decimal("0.5")
        assert refused.most * Decimal("0.01") <= sum(prices) * Decimal("0.5")
        return
    assert cart.loyalty_discount == points * Decimal("0.01")
    assert sum(line.total for line in cart.lines) == cart.total >= 0
    assert all(line.total >= 0 for line in cart.lines)
    assert cart.total >= sum(prices) / 2
