"""Looking after the outbox: what is undelivered, dead letters back in line, old events pruned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.events.models import DEAD, DELIVERED, PENDING, OutboxDelivery, OutboxEvent
from core.clock import Clock
from core.db import writer

__all__ = ["backlog", "prune", "retry_dead"]


async def backlog(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Deliveries per endpoint and status (`pending`, `dead`): what a backlog metric reports."""
    stmt = (
        select(OutboxDelivery.endpoint, OutboxDelivery.status, func.count())
        .where(OutboxDelivery.status != DELIVERED)
        .group_by(OutboxDelivery.endpoint, OutboxDelivery.status)
    )
    result: dict[str, dict[str, int]] = {}
    async with engine.connect() as conn:
        for endpoint, status, count in await conn.execute(stmt):
            result.setdefault(endpoint, {})[status] = count
    return result


async def retry_dead(engine: AsyncEngine, clock: Clock, endpoint: str | None = None) -> int:
    """Put dead-lettered deliveries back in line (attempts reset): after the receiver is fixed."""
    stmt = update(OutboxDelivery).where(OutboxDelivery.status == DEAD)
    if endpoint is not None:
        stmt = stmt.where(OutboxDelivery.endpoint == endpoint)
    async with writer(engine).begin() as conn:
        result = await conn.execute(
            stmt.values(status=PENDING, attempts=0, next_attempt_at=clock.now(), last_error=literal(None))
        )
    return int(result.rowcount or 0)


async def prune(engine: AsyncEngine, before: datetime) -> tuple[int, int]:
    """Forget events created before `before` that no endpoint still has pending or dead-lettered,
    with their deliveries. Returns (events, deliveries) deleted."""
    unfinished = exists().where(OutboxDelivery.event_id == OutboxEvent.id, OutboxDelivery.status != DELIVERED)
    done = select(OutboxEvent.id).where(OutboxEvent.created_at < before, ~unfinished)
    async with writer(engine).begin() as conn:
        deliveries = await conn.execute(delete(OutboxDelivery).where(OutboxDelivery.event_id.in_(done)))
        events = await conn.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(done)))
    return int(events.rowcount or 0), int(deliveries.rowcount or 0)
