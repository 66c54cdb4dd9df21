"""The emails an order step sends its customer, queued in the step's own unit of work.

The message is written to the email outbox on the step's connection, so it exists exactly when
the step committed: a step that rolls back takes its message with it, and a message is never
queued for a step that did not happen. Guests have no account to write to (nothing is queued),
and neither has an erased customer (`notifications.enqueue` refuses them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from commerce.catalog import service as catalog
from commerce.notifications import service as notifications
from commerce.notifications.templates import local_date, money_text
from commerce.orders import records as r
from commerce.orders.models import OrderRow
from commerce.orders.unit import OrderServices
from core.db import Within

__all__ = ["order_confirmed", "ready_for_pickup"]


async def order_confirmed(
    conn: AsyncConnection, services: OrderServices, order: r.Order, status: str, language: str | None
) -> bool:
    """A customer's checkout was confirmed. Not for a sale at the till (COMPLETED at once: the
    receipt is handed over there) nor a guest's. `language`: the checkout's Accept-Language."""
    if order.customer_key is None or status == r.COMPLETED:
        return False
    return await notifications.notify_order_confirmed(
        conn,
        services.vault,
        services.clock,
        customer_key=order.customer_key,
        order_number=order.number,
        total=money_text(order.total, order.currency),
        language=language,
    )


async def ready_for_pickup(conn: AsyncConnection, services: OrderServices, row: OrderRow, now: datetime) -> bool:
    """A collect order is packed and waiting at its store: until its reservation runs out (reserve
    & collect, `expire-reservations` cancels it then), or, paid and never expired, for the hold
    period (click & collect). The date is the store's, in its time zone."""
    if row.customer_key is None or row.pickup_location_id is None:
        return False
    if row.reserved_until is not None:
        collect_by = local_date(row.reserved_until, until=True)
    else:
        collect_by = local_date(now + services.pickup_hold)
    store = (await catalog.locations_by_ids(Within(conn), [row.pickup_location_id])).get(row.pickup_location_id)
    return await notifications.notify_ready_for_pickup(
        conn,
        services.vault,
        services.clock,
        customer_key=row.customer_key,
        order_number=r.order_number(row.id),
        store=store.name if store is not None else "",
        collect_by=collect_by,
    )
