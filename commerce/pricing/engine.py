"""The pricing engine: pure functions from lines, promotions and codes to a priced cart.

Every channel, the cart and (later) checkout call `price_cart`; nothing else computes money.
It does no I/O, so the same input gives the same output wherever it runs.

Rounding: every amount is rounded to the currency's minor unit half-up (`money.quantize`),
once per promotion. Each promotion's discount is computed on the eligible lines' remaining
amount and rounded; that rounded amount is then shared over the eligible lines in whole
minor units, proportionally to what each line still costs, the leftover units going to the
lines with the largest remainders (ties: first line first). So line totals always add up to
the cart total, no line is discounted below zero, and the total is never negative.

Promotions apply in order: automatic ones (no code) first, then coded ones in the order the
cart holds the codes; each sees what the previous left. A promotion that names channels
applies only there; one that names none applies in every channel.

A personal offer is a promotion with a target: loyalty tiers, and/or customers who bought from
given categories in a period. It applies only when the `Audience` (the customer's tier, and
their purchases by category, present only with PERSONALIZATION consent) qualifies.

Loyalty points to redeem come last, after every promotion: worth `points x point_value`,
at most `max_share` of what the promotions left (rounded down to whole minor units), and
shared over the lines like any discount. More than the share raises `PointsOverShare`,
naming the input field; the balance itself is the loyalty context's to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cached_property, partial
from typing import NamedTuple

from commerce.pricing.errors import PointsNotRedeemableHere, PointsOverShare
from commerce.pricing.money import MINOR_UNITS, minor_exponent, quantize

__all__ = [
    "AppliedDiscount",
    "Audience",
    "CodeProblem",
    "LineInput",
    "LoyaltyRedemption",
    "PricedCart",
    "PricedLine",
    "Promotion",
    "PromotionKind",
    "code_problem",
    "normalize_code",
    "price_cart",
]


class CodeProblem(StrEnum):
    """Why a discount code cannot be used: the stable error codes a client sees."""

    INVALID = "DISCOUNT_CODE_INVALID"
    EXPIRED = "DISCOUNT_CODE_EXPIRED"
    NOT_IN_CHANNEL = "DISCOUNT_CODE_NOT_IN_CHANNEL"
    USAGE_LIMIT_REACHED = "DISCOUNT_CODE_USAGE_LIMIT_REACHED"


class PromotionKind(StrEnum):
    """How a promotion's `value` reads (the database's CHECK lists the same values)."""

    PERCENTAGE = "percentage"  # percent off the lines in scope
    FIXED_AMOUNT = "fixed_amount"  # an amount in the promotion's currency, spread over the lines


def normalize_code(code: str) -> str:
    """Codes are matched case-insensitively, without surrounding spaces."""
    return code.strip().upper()


class LineInput(NamedTuple):
    """A line to price. (Named tuples, this and `PricedLine`: a cart of a hundred lines builds a
    hundred of each on every change, and a frozen dataclass costs three times as much to build.)"""

    key: int  # the caller's line key, handed back on the priced line
    variant_id: int
    product_id: int | None
    category_id: int | None
    unit_price: Decimal
    quantity: int


@dataclass(frozen=True, slots=True)
class Promotion:
    id: int
    description: str
    kind: PromotionKind
    value: Decimal  # percent (10 = 10%) or an amount in `currency`
    code: str | None = None  # None: applies automatically
    currency: str | None = None  # FIXED_AMOUNT only: the currency `value` is in
    min_subtotal: Decimal | None = None  # of the whole cart, before discounts
    product_ids: frozenset[int] = frozenset()  # empty scope: every product
    category_ids: frozenset[int] = frozenset()
    channels: frozenset[str] = frozenset()  # empty: every channel
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None  # uses in total, over all customers
    usage_limit_per_customer: int | None = None
    times_used: int = 0
    target_tiers: frozenset[str] = frozenset()  # empty: any tier
    target_category_ids: frozenset[int] = frozenset()  # empty: no purchase condition
    target_bought_from: datetime | None = None  # the period the purchase must fall in
    target_bought_until: datetime | None = None

    @property
    def is_targeted(self) -> bool:
        return bool(self.target_tiers or self.target_category_ids)

    def targets(self, audience: Audience | None) -> bool:
        """Whether the promotion is for this customer (an untargeted one is for everyone)."""
        if not self.is_targeted:
            return True
        if audience is None:
            return False
        if self.target_tiers and audience.tier not in self.target_tiers:
            return False
        return not self.target_category_ids or bool(self.bought_for(audience))

    def bought_for(self, audience: Audience) -> frozenset[int]:
        """The target categories the audience bought from in the offer's period: why a purchase
        offer is theirs (shown to them in their data-subject export)."""
        return frozenset(
            category
            for category, at in audience.purchases
            if category in self.target_category_ids
            and (self.target_bought_from is None or at >= self.target_bought_from)
            and (self.target_bought_until is None or at < self.target_bought_until)
        )

    def covers(self, line: LineInput) -> bool:
        if not self.product_ids and not self.category_ids:
            return True
        return line.product_id in self.product_ids or line.category_id in self.category_ids


@dataclass(frozen=True, slots=True)
class Audience:
    """Who the cart is for, as far as personal offers need: their loyalty tier, and what they bought
    (category, when) - empty unless they consent to PERSONALIZATION."""

    tier: str | None = None
    purchases: tuple[tuple[int, datetime], ...] = ()


@dataclass(frozen=True, slots=True)
class LoyaltyRedemption:
    """Points a customer asks to pay with, and the programme's terms (policies/loyalty.toml)."""

    points: int
    point_value: Decimal  # in `currency`, per point
    max_share: Decimal  # of the total after promotions, 0..1
    currency: str  # the programme's currency: points pay only in it


class PricedLine(NamedTuple):
    key: int
    variant_id: int
    quantity: int
    unit_price: Decimal
    subtotal: Decimal  # unit price x quantity
    discount: Decimal  # this line's share of every applied discount
    total: Decimal  # subtotal - discount, never negative


@dataclass(frozen=True, slots=True)
class AppliedDiscount:
    promotion_id: int
    code: str | None
    description: str
    amount: Decimal


@dataclass(frozen=True)
class PricedCart:
    """A priced cart. Its `lines` are made when first read: a cart change answers with the
    total, and a cart of a hundred lines would build a hundred priced lines for nothing."""

    currency: str
    discounts: tuple[AppliedDiscount, ...]
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal
    # code -> why it does not apply now (a stable code), for codes held but not applied
    unapplied_codes: Mapping[str, str] = field(default_factory=dict)
    loyalty_points: int = 0  # points redeemed (their value is inside `discount_total` and the lines)
    loyalty_discount: Decimal = Decimal(0)
    make_lines: Callable[[], tuple[PricedLine, ...]] = field(default=tuple, repr=False, compare=False)

    @cached_property
    def lines(self) -> tuple[PricedLine, ...]:
        return self.make_lines()


def code_problem(
    promotion: Promotion | None, *, channel: str | None, now: datetime, customer_usage: Mapping[int, int]
) -> CodeProblem | None:
    """Why a code cannot be used at all now (a stable error code), or None when it can; `channel`
    None: in some channel (a data-subject export lists an offer's channels instead)."""
    if promotion is None:
        return CodeProblem.INVALID
    if (promotion.starts_at and now < promotion.starts_at) or (promotion.ends_at and now >= promotion.ends_at):
        return CodeProblem.EXPIRED
    if promotion.channels and channel is not None and channel not in promotion.channels:
        return CodeProblem.NOT_IN_CHANNEL
    if promotion.usage_limit is not None and promotion.times_used >= promotion.usage_limit:
        return CodeProblem.USAGE_LIMIT_REACHED
    if (
        promotion.usage_limit_per_customer is not None
        and customer_usage.get(promotion.id, 0) >= promotion.usage_limit_per_customer
    ):
        return CodeProblem.USAGE_LIMIT_REACHED
    return None


def _minor(amount: Decimal, currency: str) -> int:
    return int(quantize(amount, currency).scaleb(MINOR_UNITS.get(currency, 2)))


def _major(units: int, currency: str) -> Decimal:
    return _major_of(units, MINOR_UNITS.get(currency, 2))


def _major_of(units: int, digits: int) -> Decimal:
    """Whole minor units as the amount (1234 -> 12.34): shifting an integer's exponent needs no rounding."""
    return Decimal(units).scaleb(-digits)


def _share(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` minor units over `weights` proportionally (largest remainder); sum(weights) >= amount."""
    total = sum(weights)
    if total == 0 or amount == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    leftover = amount - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[i] += 1
    return shares


def _discount_units(promotion: Promotion, base_units: int, currency: str) -> int:
    if promotion.kind is PromotionKind.PERCENTAGE:
        percent = min(max(promotion.value, Decimal(0)), Decimal(100))
        units = int((Decimal(base_units) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif promotion.kind is PromotionKind.FIXED_AMOUNT and promotion.currency in (None, currency):
        units = _minor(max(promotion.value, Decimal(0)), currency)
    else:  # a fixed amount in another currency does not apply
        units = 0
    return min(units, base_units)


def price_cart(
    lines: Sequence[LineInput],
    promotions: Sequence[Promotion],
    codes: Sequence[str],
    *,
    currency: str,
    channel: str,
    now: datetime,
    customer_usage: Mapping[int, int] | None = None,
    loyalty: LoyaltyRedemption | None = None,
    audience: Audience | None = None,
) -> PricedCart:
    """Price `lines` with the automatic promotions and those of `codes` that apply now, then `loyalty`."""
    usage = customer_usage or {}
    digits, exponent = MINOR_UNITS.get(currency, 2), minor_exponent(currency)
    subtotals = [
        int((line.unit_price * line.quantity).quantize(exponent, ROUND_HALF_UP).scaleb(digits)) for line in lines
    ]
    remaining = list(subtotals)
    cart_subtotal = _major(sum(subtotals), currency)
    promotions = [p for p in promotions if p.targets(audience)]  # a personal offer not for them: absent
    by_code = {normalize_code(p.code): p for p in promotions if p.code}
    held = list(dict.fromkeys(normalize_code(c) for c in codes))
    ordered = [p for p in promotions if not p.code] + [by_code[c] for c in held if c in by_code]

    unapplied: dict[str, str] = {}
    for code in held:
        problem = code_problem(by_code.get(code), channel=channel, now=now, customer_usage=usage)
        if problem:
            unapplied[code] = problem
    applied: list[AppliedDiscount] = []
    for promotion in ordered:
        if promotion.code and normalize_code(promotion.code) in unapplied:
            continue
        if not promotion.code and code_problem(promotion, channel=channel, now=now, customer_usage=usage):
            continue
        if promotion.min_subtotal is not None and cart_subtotal < promotion.min_subtotal:
            if promotion.code:
                unapplied[normalize_code(promotion.code)] = "DISCOUNT_MIN_SUBTOTAL_NOT_MET"
            continue
        eligible = [i for i, line in enumerate(lines) if promotion.covers(line) and remaining[i] > 0]
        units = _discount_units(promotion, sum(remaining[i] for i in eligible), currency)
        if units == 0:
            continue
        for i, share in zip(eligible, _share(units, [remaining[i] for i in eligible]), strict=True):
            remaining[i] -= share
        applied.append(AppliedDiscount(promotion.id, promotion.code, promotion.description, _major(units, currency)))

    loyalty_units = _redeem(loyalty, remaining, currency) if loyalty is not None and loyalty.points else 0

    discount_total = _major(sum(subtotals) - sum(remaining), currency)
    return PricedCart(
        currency=currency,
        discounts=tuple(applied),
        subtotal=cart_subtotal,
        discount_total=discount_total,
        total=_major(sum(remaining), currency),
        unapplied_codes=unapplied,
        loyalty_points=loyalty.points if loyalty is not None and loyalty_units else 0,
        loyalty_discount=_major(loyalty_units, currency),
        # (a copy of `lines`: the caller's list may change before they are read)
        make_lines=partial(_priced_lines, tuple(lines), subtotals, remaining, digits, exponent),
    )


def _priced_lines(
    lines: Sequence[LineInput], subtotals: list[int], remaining: list[int], digits: int, exponent: Decimal
) -> tuple[PricedLine, ...]:
    """Each line with its amounts (a line nothing discounts shares one zero and has its subtotal as its total)."""
    shift = -digits
    zero = Decimal(0).scaleb(shift)
    priced = []
    for line, sub, left in zip(lines, subtotals, remaining, strict=True):
        subtotal = Decimal(sub).scaleb(shift)  # as `_major_of`, inline: this runs per line
        discount, total = (
            (zero, subtotal) if left == sub else (Decimal(sub - left).scaleb(shift), Decimal(left).scaleb(shift))
        )
        unit_price = line.unit_price.quantize(exponent, ROUND_HALF_UP)
        priced.append(PricedLine(line.key, line.variant_id, line.quantity, unit_price, subtotal, discount, total))
    return tuple(priced)


def _redeem(loyalty: LoyaltyRedemption, remaining: list[int], currency: str) -> int:
    """Take the points' value off `remaining` (in place), shared over the lines; the minor units taken."""
    if loyalty.points < 0:
        raise PointsNotRedeemableHere("Points to redeem cannot be negative.")
    if loyalty.currency != currency:
        raise PointsNotRedeemableHere(f"Points pay only for orders in {loyalty.currency}.")
    per_point = _minor(loyalty.point_value, currency)
    cap = int((Decimal(sum(remaining)) * loyalty.max_share).to_integral_value(ROUND_FLOOR))
    units = loyalty.points * per_point
    if units > cap:
        raise PointsOverShare(cap // per_point if per_point else 0)
    eligible = [i for i, left in enumerate(remaining) if left > 0]
    for i, share in zip(eligible, _share(units, [remaining[i] for i in eligible]), strict=True):
        remaining[i] -= share
    return units
