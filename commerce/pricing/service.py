"""Pricing with data: loads prices, scopes, promotions and usage, then calls the pure engine.

Cart and checkout call `price_lines`; `check_codes` tells which codes may be held at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import service as catalog
from commerce.loyalty import service as loyalty_accounts
from commerce.pricing.cache import PricingCache
from commerce.pricing.engine import (
    Audience,
    LineInput,
    LoyaltyRedemption,
    PricedCart,
    Promotion,
    PromotionKind,
    code_problem,
    normalize_code,
    price_cart,
)
from commerce.pricing.price_book import prices_by_variant_ids
from commerce.pricing.promotion_models import PromotionRow, PromotionUsage
from policies.loyalty import LoyaltyPolicy, loyalty_policy
from vault.service import Vault

__all__ = [
    "PersonalOffers",
    "audience_of",
    "check_codes",
    "customer_usage",
    "load_promotions",
    "offers_for",
    "personal_offers",
    "price_lines",
    "variants_for_sale",
]


def _promotion(row: Any, times_used: int) -> Promotion:
    return Promotion(
        id=row.id,
        description=row.description,
        kind=PromotionKind(row.kind),
        value=Decimal(row.value),
        code=row.code,
        currency=row.currency,
        min_subtotal=Decimal(row.min_subtotal) if row.min_subtotal is not None else None,
        product_ids=frozenset(row.product_ids or ()),
        category_ids=frozenset(row.category_ids or ()),
        channels=frozenset(row.channels or ()),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        usage_limit=row.usage_limit,
        usage_limit_per_customer=row.usage_limit_per_customer,
        times_used=times_used,
        target_tiers=frozenset(row.target_tiers or ()),
        target_category_ids=frozenset(row.target_category_ids or ()),
        target_bought_from=row.target_bought_from,
        target_bought_until=row.target_bought_until,
    )


async def load_promotions(
    engine: AsyncEngine, codes: Iterable[str], cache: PricingCache | None = None, *, targeted: bool = False
) -> list[Promotion]:
    """The active automatic promotions plus those of `codes` (unknown codes are simply absent);
    with `targeted`, every active promotion, so that a customer's personal offers can be picked out."""
    if targeted:
        return await _load_promotions(engine, None)
    if cache is not None:
        return await cache.promotions(codes, lambda: _load_promotions(engine, None))
    # Only what a promotion's code could be (the column's 64 characters, no NUL, which PostgreSQL
    # refuses in text with an error rather than a miss): anything else is simply unknown.
    wanted = sorted({code for code in map(normalize_code, codes) if 0 < len(code) <= 64 and "\x00" not in code})
    return await _load_promotions(engine, wanted)


async def _load_promotions(engine: AsyncEngine, wanted: list[str] | None) -> list[Promotion]:
    """Active promotions: automatic ones plus those coded `wanted`; every active one for None."""
    condition: ColumnElement[bool] = PromotionRow.active.is_(True)
    if wanted is not None:
        condition = and_(condition, or_(PromotionRow.code.is_(None), PromotionRow.code.in_(wanted)))
    used = (
        select(func.count()).select_from(PromotionUsage).where(PromotionUsage.promotion_id == PromotionRow.id)
    ).scalar_subquery()
    stmt = select(PromotionRow.__table__, used.label("times_used")).where(condition).order_by(PromotionRow.id)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [_promotion(row, row.times_used) for row in rows]


async def customer_usage(engine: AsyncEngine, customer_key: int | None, promotion_ids: Sequence[int]) -> dict[int, int]:
    if customer_key is None or not promotion_ids:
        return {}
    stmt = (
        select(PromotionUsage.promotion_id, func.count())
        .where(PromotionUsage.customer_key == customer_key, PromotionUsage.promotion_id.in_(promotion_ids))
        .group_by(PromotionUsage.promotion_id)
    )
    async with engine.connect() as conn:
        return {row[0]: row[1] for row in await conn.execute(stmt)}


async def check_codes(
    engine: AsyncEngine,
    codes: Sequence[str],
    *,
    channel: str,
    now: datetime,
    customer_key: int | None,
    cache: PricingCache | None = None,
) -> list[str | None]:
    """For each code, why it cannot be held now (a stable code), or None."""
    promotions = [p for p in await load_promotions(engine, codes, cache) if p.code]
    by_code = {p.code: p for p in promotions}
    usage = await customer_usage(engine, customer_key, [p.id for p in promotions])
    return [code_problem(by_code.get(normalize_code(c)), channel=channel, now=now, customer_usage=usage) for c in codes]


async def price_lines(
    engine: AsyncEngine,
    lines: Sequence[tuple[int, int, int]],
    codes: Sequence[str],
    *,
    currency: str,
    channel: str,
    now: datetime,
    customer_key: int | None,
    cache: PricingCache | None = None,
    loyalty_points: int = 0,
    loyalty: LoyaltyPolicy | None = None,
    vault: Vault | None = None,
) -> PricedCart:
    """Lines priced from the price book of `currency`, with the promotions that apply now, then
    `loyalty_points` redeemed on the terms of the loyalty policy (`PointsOverShare` past its share).

    `lines` are (key, variant id, quantity): a cart's lines as they come (the cart's own named
    tuples, in that order: no copy of a hundred lines on every change).
    With `cache`, promotions, prices and scopes come from it (see commerce/pricing/cache.py).
    """
    variant_ids = [variant_id for _, variant_id, _ in lines]
    promotions = await load_promotions(engine, codes, cache)
    # Only what is for sale now: a line whose variant or product was withdrawn, or that has no
    # price in this currency, is left out of the priced cart (its totals, and the lines it shows).
    if not lines:
        prices: dict[int, Decimal] = {}
        scopes: dict[int, tuple[int, int | None]] = {}
    elif cache is not None:
        prices = await cache.prices(variant_ids, currency, lambda ids: prices_by_variant_ids(engine, ids, currency))
        scopes = await cache.scopes(variant_ids, lambda ids: catalog.variant_scopes(engine, ids))
    else:
        prices = await prices_by_variant_ids(engine, variant_ids, currency)
        scopes = await catalog.variant_scopes(engine, variant_ids)
    inputs = [
        LineInput(key, variant_id, *scopes[variant_id], prices[variant_id], quantity)  # product, category
        for key, variant_id, quantity in lines
        if variant_id in prices and variant_id in scopes
    ]
    limited = [p.id for p in promotions if p.usage_limit_per_customer is not None]
    usage = await customer_usage(engine, customer_key, limited)
    audience = None
    if customer_key is not None and any(p.is_targeted for p in promotions):  # personal offers: who is it for?
        needs_purchases = any(p.target_category_ids for p in promotions)
        audience = await audience_of(engine, vault if needs_purchases else None, customer_key, now)
    terms = loyalty or loyalty_policy()
    redemption = (
        LoyaltyRedemption(loyalty_points, terms.point_value, terms.max_redeem_share, terms.currency)
        if loyalty_points
        else None
    )
    return price_cart(
        inputs,
        promotions,
        codes,
        currency=currency,
        channel=channel,
        now=now,
        customer_usage=usage,
        loyalty=redemption,
        audience=audience,
    )


async def variants_for_sale(engine: AsyncEngine, variant_ids: Sequence[int], cache: PricingCache) -> set[int]:
    """Which variants are for sale (published, of a published product), from the scopes pricing keeps:
    a cart change asks this instead of the database, and sees a withdrawal as soon as pricing does."""
    scopes = await cache.scopes(variant_ids, lambda ids: catalog.variant_scopes(engine, ids))
    return set(scopes)


async def audience_of(engine: AsyncEngine, vault: Vault | None, customer_key: int, now: datetime) -> Audience:
    """The customer's tier and, with a vault and their PERSONALIZATION consent, what they bought by category."""
    from commerce.recommendations.history import OFFERS, consented_purchases  # reads orders, which prices

    tier = (await loyalty_accounts.tier_of(engine, customer_key, now)).name
    if vault is None:
        return Audience(tier)
    bought = await consented_purchases(engine, vault, [customer_key], OFFERS)
    scopes = await catalog.variant_scopes(engine, sorted({p.variant_id for p in bought})) if bought else {}
    purchases = tuple(
        (scopes[p.variant_id][1], p.placed_at)
        for p in bought
        if p.variant_id in scopes and scopes[p.variant_id][1] is not None
    )
    return Audience(tier, purchases)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PersonalOffers:
    """The promotions meant for a customer now, and the profile they were chosen by (why)."""

    audience: Audience
    promotions: tuple[Promotion, ...]


async def personal_offers(
    engine: AsyncEngine, vault: Vault, customer_key: int, *, channel: str | None, now: datetime
) -> PersonalOffers:
    """The personal offers this customer may use now in `channel` (None: in any channel), with
    their tier and, when an offer asks and they consent, what they bought."""
    targeted = [p for p in await load_promotions(engine, [], targeted=True) if p.is_targeted]
    if not targeted:
        return PersonalOffers(Audience(), ())
    needs_purchases = any(p.target_category_ids for p in targeted)
    audience = await audience_of(engine, vault if needs_purchases else None, customer_key, now)
    usage = await customer_usage(engine, customer_key, [p.id for p in targeted])
    offered = tuple(
        p
        for p in targeted
        if p.targets(audience) and code_problem(p, channel=channel, now=now, customer_usage=usage) is None
    )
    return PersonalOffers(audience, offered)


async def offers_for(
    engine: AsyncEngine, vault: Vault, customer_key: int, *, channel: str, now: datetime
) -> list[Promotion]:
    """The personal offers this customer may use now in `channel` (automatic ones apply by themselves)."""
    return list((await personal_offers(engine, vault, customer_key, channel=channel, now=now)).promotions)
