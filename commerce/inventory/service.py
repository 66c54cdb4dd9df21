"""Reading stock: what is available per variant and location."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from commerce.inventory.models import StockLevel
from core.db import Connectable

__all__ = ["Availability", "stock_by_variant_ids"]


@dataclass(frozen=True, slots=True)
class Availability:
    variant_id: int
    location_id: int
    available: int  # on hand minus reserved


# Built once (every cart change runs it; building it cost more CPU than running it).
_STOCK = (
    select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand - StockLevel.reserved)
    .where(StockLevel.variant_id.in_(bindparam("variant_ids", expanding=True)))
    .order_by(StockLevel.variant_id, StockLevel.location_id)
)


async def stock_by_variant_ids(engine: Connectable, variant_ids: Sequence[int]) -> dict[int, list[Availability]]:
    grouped: dict[int, list[Availability]] = {vid: [] for vid in variant_ids}
    async with engine.connect() as conn:
        for row in await conn.execute(_STOCK, {"variant_ids": list(variant_ids)}):
            grouped[row[0]].append(Availability(*row))
    return grouped
