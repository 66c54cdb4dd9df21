"""Reading stock: what is available per variant and location."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from commerce.inventory.models import StockLevel
from core.db import Connectable
from core.id_lists import in_ids

__all__ = ["Availability", "stock_by_variant_ids"]


@dataclass(frozen=True, slots=True)
class Availability:
    variant_id: int
    location_id: int
    available: int  # on hand minus reserved


# Built once, the ids bound at each call (an expanding IN): no statement or cache key per batch.
_STOCK_BY_VARIANT_IDS = (
    select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand - StockLevel.reserved)
    .where(in_ids(StockLevel.variant_id))
    .order_by(StockLevel.variant_id, StockLevel.location_id)
)


async def stock_by_variant_ids(engine: Connectable, variant_ids: Sequence[int]) -> dict[int, list[Availability]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_STOCK_BY_VARIANT_IDS, {"ids": variant_ids})).all()
    grouped: dict[int, list[Availability]] = {vid: [] for vid in variant_ids}
    for variant_id, location_id, available in rows:
        grouped[variant_id].append(Availability(variant_id, location_id, available))
    return grouped
