"""What personalization reads about a person, for data-subject requests: the purchases the
recommendations and offers may use (only while PERSONALIZATION consent is given). The
statistics built from them are counts over many people and name no one; an erasure leaves
nothing here to delete, and the next rebuild no longer sees the person's (now ownerless) orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commerce.recommendations.history import RECOMMENDATIONS, consented_purchases
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["RecommendationInputSource"]


class RecommendationInputSource:
    name: str = "recommendationInputs"
    tables: tuple[str, ...] = ()

    def describe(self) -> tuple[str, ...]:
        return ("recommendation_inputs",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        purchases = await consented_purchases(ctx.engine, ctx.vault, [subject.customer_key], RECOMMENDATIONS)
        return [{"order": p.order_id, "variantId": p.variant_id, "at": p.placed_at.isoformat()} for p in purchases]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return []

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        return {s.subject_id: [] for s in subjects}
