"""The stock movement log: every change of on-hand or reserved stock, who made it, why and for which order.

`record_movement` runs in the caller's transaction, next to the stock update it explains, and
emits a `stock.moved` outbox event for the warehouse and ERP (aggregate: the stock level,
`"<location_id>:<variant_id>"`), naming the SKU and location code too (the names the ERP and
`stockSync` use) and the level after the change (`onHand`, `reserved`): a receiver that sets
those instead of adding the deltas stays right however often an event is delivered. Call it
after the stock update it explains. The caller has just updated (and so locked) that stock row,
which keeps one stock level's events in order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commerce.catalog.service import sku_and_location_code
from commerce.events.outbox import emit
from commerce.inventory.models import StockLevel, StockMovement

__all__ = ["STOCK_LEVEL_AGGREGATE", "STOCK_MOVED", "record_movement", "stock_level_key"]

STOCK_LEVEL_AGGREGATE = "stock_level"
STOCK_MOVED = "stock.moved"


_LEVEL = select(StockLevel.on_hand, StockLevel.reserved).where(
    StockLevel.variant_id == bindparam("variant"), StockLevel.location_id == bindparam("location")
)
_INSERT = insert(StockMovement)  # built once; the values go as parameters


def stock_level_key(location_id: int, variant_id: int) -> str:
    """The aggregate id of one stock level in events."""
    return f"{location_id}:{variant_id}"


async def record_movement(
    session: AsyncSession | AsyncConnection,
    *,
    location_id: int,
    variant_id: int,
    on_hand_delta: int,
    reserved_delta: int,
    reason: str,
    order_key: str | None,
    actor: str | None,
    at: datetime | None = None,
    names: tuple[str, str] | None = None,
    level: tuple[int, int] | None = None,
) -> None:
    """Log one stock change and tell the outbox. `actor` stays in the log, never in the event.

    `names` (SKU, location code) and `level` (on hand, reserved after the change, e.g. from the
    update's RETURNING) spare their reads when the caller knows them already."""
    at = at or datetime.now(UTC)
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    sku, location_code = names or await sku_and_location_code(conn, variant_id, location_id)
    if level is None:
        found = (await conn.execute(_LEVEL, {"variant": variant_id, "location": location_id})).first()
        level = (found[0], found[1]) if found else None
    await conn.execute(
        _INSERT,
        {
            "location_id": location_id,
            "variant_id": variant_id,
            "on_hand_delta": on_hand_delta,
            "reserved_delta": reserved_delta,
            "reason": reason,
            "order_key": order_key,
            "actor": actor,
            "at": at,
        },
    )
    await emit(
        conn,
        aggregate_type=STOCK_LEVEL_AGGREGATE,
        aggregate_id=stock_level_key(location_id, variant_id),
        event_type=STOCK_MOVED,
        payload={
            "locationId": location_id,
            "variantId": variant_id,
            "sku": sku,
            "locationCode": location_code,
            "onHandDelta": on_hand_delta,
            "reservedDelta": reserved_delta,
            "onHand": level[0] if level else None,
            "reserved": level[1] if level else None,
            "reason": reason,
            "orderKey": order_key,
        },
        occurred_at=at,
    )
