"""Promotion uses for data-subject requests: exported with the order they belong to; on erasure
the person is removed and the order reference stays (the promotion's total limit still counts it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update

from commerce.pricing.promotion_models import PromotionRow, PromotionUsage, PromotionUsageCounter
from core.db import writer
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["PromotionUsageSource"]


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
