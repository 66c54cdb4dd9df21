"""Order events for the warehouse and ERP: ids, statuses and amounts, never personal data."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commerce.events.outbox import emit
from commerce.orders.records import order_number

__all__ = ["ORDER_AGGREGATE", "LineFigures", "order_event"]

ORDER_AGGREGATE = "order"
LineFigures = tuple[str, int, int, int]  # sku, variant id, location id, quantity


async def order_event(
    session: AsyncSession | AsyncConnection,
    *,
    order_id: int,
    event_type: str,
    status: str,
    fulfillment_method: str,
    pickup_location_id: int | None,
    channel: str,
    total: Decimal,
    currency: str,
    lines: Sequence[LineFigures] = (),
    extra: dict[str, object] | None = None,
) -> None:
    """`order.<what happened>` in the caller's transaction (the order row is locked or new there)."""
    await emit(
        session,
        aggregate_type=ORDER_AGGREGATE,
        aggregate_id=str(order_id),
        event_type=event_type,
        payload={
            "orderId": order_id,
            "number": order_number(order_id),
            "status": status,
            "channel": channel,
            "fulfillmentMethod": fulfillment_method,
            "pickupLocationId": pickup_location_id,
            "total": total,
            "currency": currency,
            "lines": [{"sku": s, "variantId": v, "locationId": loc, "quantity": q} for s, v, loc, q in lines],
            **(extra or {}),
        },
    )
