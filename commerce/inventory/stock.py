"""Changing stock, inside the caller's unit of work: reserve, release, hand over, restock.

Every change is one conditional or relative UPDATE (never read-modify-write), so concurrent
checkouts in any number of gateway replicas can never oversell: `reserve` raises `reserved`
only `WHERE on_hand - reserved >= n`, and the table's CHECKs are the backstop. Every change
is also written to the stock movement log (with its outbox event) by `record_movement`.

Callers that touch several rows touch them in (location, variant) order, so two units of work
never wait on each other's rows in opposite orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commerce.catalog.models import Location
from commerce.inventory.models import StockLevel
from commerce.inventory.movements import record_movement

__all__ = ["Movement", "allocation_order", "consume", "lock_levels", "release", "reserve", "restock"]


@dataclass(frozen=True, slots=True)
class Movement:
    """Why stock moved, for the movement log: the reason, the order, who did it."""

    reason: str  # e.g. "order.reserved", "order.handed_over", "order.returned"
    order_key: str | None
    actor: str | None


# Built once (the hot path of every checkout and order step); each answers the level after the change,
# which the movement's event carries, instead of reading it again.
_HERE = (StockLevel.location_id == bindparam("location"), StockLevel.variant_id == bindparam("variant"))
_AFTER = (StockLevel.on_hand, StockLevel.reserved)
_RESERVE = (
    update(StockLevel)
    .where(*_HERE, StockLevel.on_hand - StockLevel.reserved >= bindparam("units"))
    .values(reserved=StockLevel.reserved + bindparam("units"))
    .returning(*_AFTER)
)
_RELEASE = update(StockLevel).where(*_HERE).values(reserved=StockLevel.reserved - bindparam("units")).returning(*_AFTER)
_CONSUME = (
    update(StockLevel)
    .where(*_HERE)
    .values(on_hand=StockLevel.on_hand - bindparam("units"), reserved=StockLevel.reserved - bindparam("units"))
    .returning(*_AFTER)
)


async def _connection(session: AsyncSession | AsyncConnection) -> AsyncConnection:
    """Core statements go to the unit of work's connection: no ORM bulk-update path for a plain UPDATE."""
    return await session.connection() if isinstance(session, AsyncSession) else session


async def _change(
    session: AsyncSession | AsyncConnection, stmt: Any, location_id: int, variant_id: int, quantity: int
) -> tuple[AsyncConnection, tuple[int, int] | None]:
    conn = await _connection(session)
    row = (await conn.execute(stmt, {"location": location_id, "variant": variant_id, "units": quantity})).first()
    return conn, (row[0], row[1]) if row is not None else None


async def _log(
    session: AsyncSession | AsyncConnection,
    location_id: int,
    variant_id: int,
    on_hand: int,
    reserved: int,
    why: Movement,
    names: tuple[str, str] | None = None,
    level: tuple[int, int] | None = None,
) -> None:
    await record_movement(
        session,
        location_id=location_id,
        variant_id=variant_id,
        on_hand_delta=on_hand,
        reserved_delta=reserved,
        reason=why.reason,
        order_key=why.order_key,
        actor=why.actor,
        names=names,
        level=level,
    )


async def reserve(
    session: AsyncSession | AsyncConnection,
    location_id: int,
    variant_id: int,
    quantity: int,
    why: Movement,
    names: tuple[str, str] | None = None,
) -> bool:
    """Hold `quantity` units at the location if that many are available; False (nothing held) if not.
    `names`: the SKU and location code, when the caller knows them (the movement's event names them)."""
    conn, level = await _change(session, _RESERVE, location_id, variant_id, quantity)
    if level is None:
        return False
    await _log(conn, location_id, variant_id, 0, quantity, why, names, level)
    return True


async def release(
    session: AsyncSession | AsyncConnection, location_id: int, variant_id: int, quantity: int, why: Movement
) -> None:
    """Let go of held units (a cancelled, expired or failed order)."""
    conn, level = await _change(session, _RELEASE, location_id, variant_id, quantity)
    await _log(conn, location_id, variant_id, 0, -quantity, why, level=level)


async def consume(
    session: AsyncSession | AsyncConnection, location_id: int, variant_id: int, quantity: int, why: Movement
) -> None:
    """Held units leave the building (hand-over, shipping, a sale at the till)."""
    conn, level = await _change(session, _CONSUME, location_id, variant_id, quantity)
    await _log(conn, location_id, variant_id, -quantity, -quantity, why, level=level)


async def restock(session: AsyncSession, location_id: int, variant_id: int, quantity: int, why: Movement) -> None:
    """Returned units are back on the shelf at this location (its stock row is created if needed)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(StockLevel).values(variant_id=variant_id, location_id=location_id, on_hand=quantity, reserved=0)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["variant_id", "location_id"], set_={"on_hand": StockLevel.on_hand + quantity}
        )
    )
    await _log(session, location_id, variant_id, quantity, 0, why)


async def lock_levels(session: AsyncSession | AsyncConnection, variant_ids: Sequence[int]) -> None:
    """Lock the variants' stock rows at every location, in (location, variant) order: for a unit of
    work about to change some of them in another order (a shipped order's allocation)."""
    conn = await _connection(session)
    await conn.execute(
        select(StockLevel.location_id)
        .where(StockLevel.variant_id.in_(sorted(set(variant_ids))))
        .order_by(StockLevel.location_id, StockLevel.variant_id)
        .with_for_update()
    )


async def allocation_order(session: AsyncSession) -> Sequence[int]:
    """Where a shipped order's stock comes from, in the order tried: warehouses first, then stores
    (each by id). A line is taken whole from the first location that has all of it."""
    rows = await session.execute(select(Location.id).order_by((Location.kind == "WAREHOUSE").desc(), Location.id))
    return list(rows.scalars())
