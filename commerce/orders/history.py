"""What customers bought, for the contexts that learn from it (recommendations, personal offers).

Only orders that went through and lines not wholly returned count; guest orders never do (they
have no customer). Callers gate this by consent: `commerce/recommendations/history.py` is the
one reader for personalization.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.orders import records as r
from commerce.orders.models import OrderLineRow, OrderRow

__all__ = ["PURCHASED", "Purchase", "customers_with_purchases", "purchases"]

PURCHASED = (r.PLACED, r.RESERVED, r.READY_FOR_PICKUP, r.COMPLETED, r.SHIPPED, r.PARTIALLY_RETURNED)


@dataclass(frozen=True, slots=True)
class Purchase:
    order_id: int
    customer_key: int
    variant_id: int
    placed_at: datetime


async def purchases(engine: AsyncEngine, customer_keys: Sequence[int]) -> list[Purchase]:
    """Every line these customers bought and kept, in every channel, oldest order first."""
    if not customer_keys:
        return []
    stmt = (
        select(OrderRow.id, OrderRow.customer_key, OrderLineRow.variant_id, OrderRow.placed_at)
        .join(OrderLineRow, OrderLineRow.order_id == OrderRow.id)
        .where(
            OrderRow.customer_key.in_(customer_keys),
            OrderRow.status.in_(PURCHASED),
            OrderLineRow.quantity_returned < OrderLineRow.quantity,
        )
        .order_by(OrderRow.id, OrderLineRow.id)
    )
    async with engine.connect() as conn:
        return [
            Purchase(order_id, customer_key, variant_id, placed_at)
            for order_id, customer_key, variant_id, placed_at in await conn.execute(stmt)
            if customer_key is not None
        ]


async def customers_with_purchases(engine: AsyncEngine) -> list[int]:
    """Every customer with at least one order that went through (guests have none)."""
    stmt = (
        select(OrderRow.customer_key)
        .where(OrderRow.customer_key.is_not(None), OrderRow.status.in_(PURCHASED))
        .distinct()
        .order_by(OrderRow.customer_key)
    )
    async with engine.connect() as conn:
        return [key for key in (await conn.execute(stmt)).scalars() if key is not None]
