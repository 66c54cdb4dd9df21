"""Reading stock: what is available per variant and location."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select

from commerce.inventory.models import StockLevel
from core.db import Connectable
from core.id_lists import in_ids

__all__ = ["Availability", "stock_by_variant_ids"]


class Availability(NamedTuple):
    """A stock row as read (a named tuple: built by the hundred per page, twice as fast as a dataclass)."""

    variant_id: int
    location_id: int
    available: int  # on hand minus reserved


# Built once, the ids bound at each call as one list (core/id_lists.py): no statement or cache key per batch.
_STOCK_BY_VARIANT_IDS = (
    select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand - StockLevel.reserved)
    .where(in_ids(StockLevel.variant_id))
    .order_by(StockLevel.variant_id, StockLevel.location_id)
)


async def stock_by_variant_ids(engine: Connectable, variant_ids: Sequence[int]) -> dict[int, list[Availability]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_STOCK_BY_VARIANT_IDS, {"ids": variant_ids})).all()
    grouped: dict[int, list[Availability]] = {vid: [] for vid in variant_ids}
    for row in rows:
        grouped[row[0]].append(Availability._make(row))
    return grouped
