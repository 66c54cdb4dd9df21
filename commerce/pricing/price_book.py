"""The price book: one price per variant and currency, whatever the channel."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import bindparam, select

from commerce.pricing.models import Price
from core.db import Connectable
from core.id_lists import in_ids

__all__ = ["PriceEntry", "price_entries_by_variant_ids", "prices_by_variant_ids"]


# Built once, the ids and currency bound at each call: no statement or cache key per read.
_PRICES = select(Price.variant_id, Price.amount).where(
    in_ids(Price.variant_id), Price.currency == bindparam("currency")
)
_PRICE_ENTRIES = select(Price.variant_id, Price.amount, Price.compare_at_amount).where(
    in_ids(Price.variant_id), Price.currency == bindparam("currency")
)


async def prices_by_variant_ids(engine: Connectable, variant_ids: Sequence[int], currency: str) -> dict[int, Decimal]:
    async with engine.connect() as conn:
        rows = (await conn.execute(_PRICES, {"ids": variant_ids, "currency": currency})).all()
    return {variant_id: Decimal(amount) for variant_id, amount in rows}


class PriceEntry(NamedTuple):
    """A variant's price and, while it is on sale, its regular (compare-at) price. (A named tuple:
    a storefront page builds a hundred, and a frozen dataclass costs twice as much to build.)"""

    amount: Decimal
    compare_at: Decimal | None


async def price_entries_by_variant_ids(
    engine: Connectable, variant_ids: Sequence[int], currency: str
) -> dict[int, PriceEntry]:
    """The storefront's view of the one price book: each price with its compare-at price.

    A compare-at price not above the price is no sale, and is not shown."""
    async with engine.connect() as conn:
        rows = (await conn.execute(_PRICE_ENTRIES, {"ids": variant_ids, "currency": currency})).all()
    # The Numeric columns arrive as Decimal on both backends (SQLAlchemy's result processor).
    return {
        variant_id: PriceEntry(amount, compare_at if compare_at is not None and compare_at > amount else None)
        for variant_id, amount, compare_at in rows
    }
