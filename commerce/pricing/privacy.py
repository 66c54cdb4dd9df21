"""Promotions for data-subject requests. Promotion uses: exported with the order they belong to;
on erasure the person is removed and the order reference stays (the promotion's total limit
still counts it). Personal offers: what is offered to the person now and why (Art. 15(1)(h):
the result of profiling them by tier or purchases), computed when asked and never stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update

from commerce.catalog import service as catalog
from commerce.customers import service as customers
from commerce.pricing import service as pricing
from commerce.pricing.engine import Audience, Promotion
from commerce.pricing.promotion_models import PromotionRow, PromotionUsage, PromotionUsageCounter
from core.db import writer
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["PersonalOfferSource", "PromotionUsageSource"]


class PromotionUsageSource:
    name: str = "promotionUsages"
    tables: tuple[str, ...] = ("promotion_usages", "promotion_usage_counters")

    def describe(self) -> tuple[str, ...]:
        return ("promotion_usages",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        stmt = (
            select(PromotionRow.code, PromotionRow.description, PromotionUsage.order_ref, PromotionUsage.used_at)
            .join(PromotionRow, PromotionRow.id == PromotionUsage.promotion_id)
            .where(PromotionUsage.customer_key == subject.customer_key)
            .order_by(PromotionUsage.id)
        )
        async with ctx.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {"code": r.code, "promotion": r.description, "orderRef": r.order_ref, "usedAt": r.used_at.isoformat()}
            for r in rows
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        """Uses keep their order reference (the total limit still counts them); the person goes,
        and so do their per-customer counters (`c:<key>`: a key nobody will have again)."""
        keys = [s.customer_key for s in subjects]
        async with writer(ctx.engine).begin() as conn:
            await conn.execute(
                update(PromotionUsage).where(PromotionUsage.customer_key.in_(keys)).values(customer_key=None)
            )
            await conn.execute(
                delete(PromotionUsageCounter).where(PromotionUsageCounter.scope.in_([f"c:{k}" for k in keys]))
            )
        return {s.subject_id: [] for s in subjects}


class PersonalOfferSource:
    """The personal offers the person has now, in any channel, and why: the loyalty tier an offer
    is for, or the categories they bought from (read only with PERSONALIZATION consent). Nothing
    about the promotion's other customers (its use counts) goes in; nothing is stored, so an
    erasure has nothing to delete, and an erased person has no offers."""

    name: str = "personalOffers"
    tables: tuple[str, ...] = ()

    def describe(self) -> tuple[str, ...]:
        return ("loyalty", "recommendation_inputs")

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        key = subject.customer_key
        if await customers.erased_among(ctx.engine, [key]):
            return []
        offers = await pricing.personal_offers(ctx.engine, ctx.vault, key, channel=None, now=ctx.clock.now())
        bought = {p.id: sorted(p.bought_for(offers.audience)) for p in offers.promotions}
        names = await catalog.categories_by_ids(ctx.engine, sorted({c for cs in bought.values() for c in cs}))
        return [
            _offer(p, offers.audience, [names[c].name for c in bought[p.id] if c in names]) for p in offers.promotions
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return []

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        return {s.subject_id: [] for s in subjects}


def _offer(p: Promotion, audience: Audience, bought_in: list[str]) -> dict[str, Any]:
    """One offer as the export shows it: what it gives, where and until when, and why it is theirs."""
    return {
        "promotion": p.description,
        "code": p.code,
        "kind": str(p.kind),
        "value": str(p.value),
        "currency": p.currency,
        "channels": sorted(p.channels),
        "startsAt": p.starts_at.isoformat() if p.starts_at else None,
        "endsAt": p.ends_at.isoformat() if p.ends_at else None,
        "why": {
            "loyaltyTier": audience.tier if p.target_tiers else None,
            "boughtInCategories": bought_in,
        },
    }
