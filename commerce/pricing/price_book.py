"""The price book: one price per variant and currency, whatever the channel."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select

from commerce.pricing.models import Price
from core.db import Connectable

__all__ = ["prices_by_variant_ids"]


async def prices_by_variant_ids(engine: Connectable, variant_ids: Sequence[int], currency: str) -> dict[int, Decimal]:
    stmt = select(Price.variant_id, Price.amount).where(Price.variant_id.in_(variant_ids), Price.currency == currency)
    async with engine.connect() as conn:
        return {row[0]: Decimal(row[1]) for row in await conn.execute(stmt)}
