"""Deliver outbox events to their endpoints: at least once, in order per aggregate, resumably.

Each round, for every endpoint (a webhook from the webhooks file, or stdout):
1. fan-out: events the endpoint wants and has no delivery row for become `pending` deliveries.
   It runs under the endpoint's row lock (one replica at a time; the others skip it) and reads
   every event above the endpoint's watermark, so an event whose transaction committed after a
   newer one is still found. The watermark only passes events older than `FANOUT_HORIZON`
   (no write transaction stays open that long) that were fanned out.
2. claim: the due pending deliveries that are the oldest pending one of their aggregate, up to
   a batch, locked with SKIP LOCKED on PostgreSQL and leased (`next_attempt_at` moves past the
   HTTP timeout) in a short transaction: another replica neither takes them nor anything after
   them in the same aggregate. A replica that dies mid-delivery leaves a lease that runs out.
3. deliver outside any transaction, then record: `delivered`; or a retry after an exponential
   backoff; or, after `max_attempts`, `dead` (the dead-letter state: it no longer holds back
   the aggregate's later events; `commerce.events.admin.retry_dead` puts it back in line).
Sinks (webhook, stdout) are in `commerce.events.sinks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from commerce.events.models import DEAD, DELIVERED, PENDING, OutboxDelivery, OutboxEndpoint, OutboxEvent
from commerce.events.sinks import OutboundEvent, Sink
from core.clock import Clock
from core.db import dialect_insert, writer
from core.settings import Settings

__all__ = ["FANOUT_HORIZON", "Relay", "RelayOptions", "RelayReport"]

log = logging.getLogger(__name__)

FANOUT_HORIZON = timedelta(minutes=5)  # longer than any write transaction may stay open
LEASE_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class RelayOptions:
    max_attempts: int = 8
    backoff_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    batch_size: int = 100
    poll_seconds: float = 1.0
    concurrency: int = 8  # deliveries in flight per endpoint (each of a different aggregate)

    @classmethod
    def of(cls, settings: Settings) -> RelayOptions:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
            backoff_max_seconds=settings.webhook_backoff_max_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_ms / 1000,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... up to the cap."""
        return timedelta(seconds=min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


@dataclass(slots=True)
class RelayReport:
    fanned_out: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0

    def add(self, other: RelayReport) -> None:
        self.fanned_out += other.fanned_out
        self.delivered += other.delivered
        self.retried += other.retried
        self.dead += other.dead

    @property
    def did_work(self) -> bool:
        return bool(self.fanned_out or self.delivered or self.retried or self.dead)


@dataclass(slots=True)
class _Claimed:
    event: OutboundEvent
    attempts: int
    outcome: str | None = field(default=None)


def _like(pattern: str) -> str:
    """An fnmatch pattern (`*`, `?`) as a LIKE pattern with `\\` escaping LIKE's own wildcards."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _wanted(patterns: Iterable[str]) -> Any:
    return or_(*(OutboxEvent.event_type.like(_like(p), escape="\\") for p in patterns))


class Relay:
    def __init__(self, engine: AsyncEngine, sinks: Sequence[Sink], options: RelayOptions, clock: Clock) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise ValueError("two sinks share a name: each keeps its own delivery state")
        self._engine = writer(engine)  # fan-out, claim, record: write transactions
        self._reader = engine
        self._sinks = list(sinks)
        self._options = options
        self._clock = clock
        self._pg = engine.dialect.name == "postgresql"

    async def round(self) -> RelayReport:
        """One pass over every endpoint: fan out, claim, deliver, record."""
        report = RelayReport()
        for sink in self._sinks:
            report.fanned_out += await self._fan_out(sink)
            report.add(await self._deliver(sink))
        return report

    async def drain(self, *, wait_for_retries: bool = False) -> RelayReport:
        """Rounds until nothing is due; with `wait_for_retries`, until nothing is pending at all."""
        total = RelayReport()
        while True:
            report = await self.round()
            total.add(report)
            if report.did_work:
                continue
            if not wait_for_retries:
                return total
            due = await self._next_due()
            if due is None:
                return total
            await asyncio.sleep(max(0.0, min(self._options.poll_seconds, (due - self._clock.now()).total_seconds())))

    async def run(self, stop: asyncio.Event) -> RelayReport:
        """Until `stop` is set: deliver what is due, then wait `poll_seconds` when idle."""
        total = RelayReport()
        while not stop.is_set():
            report = await self.round()
            total.add(report)
            if not report.did_work:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._options.poll_seconds)
        return total

    # ------------------------------------------------------------ fan-out
    async def _fan_out(self, sink: Sink) -> int:
        now = self._clock.now()
        async with self._engine.begin() as conn:
            await conn.execute(
                dialect_insert(conn.dialect, OutboxEndpoint)
                .values(name=sink.name, low_watermark=0, created_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            mark = select(OutboxEndpoint.low_watermark).where(OutboxEndpoint.name == sink.name)
            if self._pg:
                mark = mark.with_for_update(skip_locked=True)
            watermark = (await conn.execute(mark)).scalar_one_or_none()
            if watermark is None:  # another replica is fanning out for this endpoint right now
                return 0
            delivered = exists().where(OutboxDelivery.endpoint == sink.name, OutboxDelivery.event_id == OutboxEvent.id)
            rows = (
                await conn.execute(
                    select(OutboxEvent.id, OutboxEvent.aggregate_type, OutboxEvent.aggregate_id)
                    .where(OutboxEvent.id > watermark, _wanted(sink.event_patterns), ~delivered)
                    .order_by(OutboxEvent.id)
                    .limit(self._options.batch_size)
                )
            ).all()
            if rows:
                await conn.execute(
                    dialect_insert(conn.dialect, OutboxDelivery)
                    .values(
                        [
                            {
                                "endpoint": sink.name,
                                "event_id": row.id,
                                "aggregate_type": row.aggregate_type,
                                "aggregate_id": row.aggregate_id,
                                "status": PENDING,
                                "attempts": 0,
                                "next_attempt_at": now,
                            }
                            for row in rows
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["endpoint", "event_id"])
                )
            settled = select(func.max(OutboxEvent.id)).where(
                OutboxEvent.id > watermark, OutboxEvent.created_at < now - FANOUT_HORIZON
            )
            new_mark = (await conn.execute(settled)).scalar_one_or_none() or watermark
            if len(rows) == self._options.batch_size:  # more may wait above the last one read
                new_mark = min(new_mark, rows[-1].id)
            if new_mark > watermark:
                await conn.execute(
                    update(OutboxEndpoint).where(OutboxEndpoint.name == sink.name).values(low_watermark=new_mark)
                )
        return len(rows)

    # ------------------------------------------------------------ delivery
    async def _claim(self, sink: Sink) -> list[_Claimed]:
        now = self._clock.now()
        earlier = aliased(OutboxDelivery)
        held_back = exists().where(
            earlier.endpoint == OutboxDelivery.endpoint,
            earlier.aggregate_type == OutboxDelivery.aggregate_type,
            earlier.aggregate_id == OutboxDelivery.aggregate_id,
            earlier.status == PENDING,
            earlier.event_id < OutboxDelivery.event_id,
        )
        heads = (
            select(OutboxDelivery.event_id, OutboxDelivery.attempts)
            .where(
                OutboxDelivery.endpoint == sink.name,
                OutboxDelivery.status == PENDING,
                OutboxDelivery.next_attempt_at <= now,
                ~held_back,
            )
            .order_by(OutboxDelivery.event_id)
            .limit(self._options.batch_size)
        )
        if self._pg:
            heads = heads.with_for_update(skip_locked=True, of=OutboxDelivery)
        lease_until = now + timedelta(seconds=self._options.timeout_seconds) + LEASE_MARGIN
        async with self._engine.begin() as conn:
            claimed = {row.event_id: row.attempts + 1 for row in await conn.execute(heads)}
            if not claimed:
                return []
            await conn.execute(
                update(OutboxDelivery)
                .where(OutboxDelivery.endpoint == sink.name, OutboxDelivery.event_id.in_(claimed))
                .values(attempts=OutboxDelivery.attempts + 1, next_attempt_at=lease_until)
            )
            events = await conn.execute(
                select(
                    OutboxEvent.id,
                    OutboxEvent.event_type,
                    OutboxEvent.aggregate_type,
                    OutboxEvent.aggregate_id,
                    OutboxEvent.created_at,
                    OutboxEvent.payload,
                ).where(OutboxEvent.id.in_(claimed))
            )
            found = {row.id: OutboundEvent(*row) for row in events}
        return [
            _Claimed(found[event_id], attempts) for event_id, attempts in sorted(claimed.items()) if event_id in found
        ]

    async def _deliver(self, sink: Sink) -> RelayReport:
        claimed = await self._claim(sink)
        if not claimed:
            return RelayReport()
        limit = asyncio.Semaphore(self._options.concurrency)

        async def one(item: _Claimed) -> None:
            async with limit:
                item.outcome = await sink.deliver(item.event)

        await asyncio.gather(*(one(item) for item in claimed))
        return await self._record(sink, claimed)

    async def _record(self, sink: Sink, claimed: Sequence[_Claimed]) -> RelayReport:
        """One UPDATE per outcome (delivered, dead, retry after n attempts), not one per event."""
        now = self._clock.now()
        report = RelayReport()
        groups: dict[tuple[str, str | None, int], list[int]] = defaultdict(list)
        for item in claimed:
            if item.outcome is None:
                groups[(DELIVERED, None, 0)].append(item.event.id)
                report.delivered += 1
            elif item.attempts >= self._options.max_attempts:
                groups[(DEAD, item.outcome, 0)].append(item.event.id)
                report.dead += 1
                log.warning(
                    "event %s to endpoint %s dead-lettered after %s attempts: %s",
                    item.event.id,
                    sink.name,
                    item.attempts,
                    item.outcome,
                )
            else:
                groups[(PENDING, item.outcome, item.attempts)].append(item.event.id)
                report.retried += 1
        async with self._engine.begin() as conn:
            for (status, error, attempts), event_ids in groups.items():
                values: dict[str, Any] = {"status": status, "last_error": error}
                if status == DELIVERED:
                    values["delivered_at"] = now
                elif status == PENDING:
                    values["next_attempt_at"] = now + self._options.backoff(attempts)
                await conn.execute(
                    update(OutboxDelivery)
                    .where(OutboxDelivery.endpoint == sink.name, OutboxDelivery.event_id.in_(event_ids))
                    .values(**values)
                )
        return report

    async def _next_due(self) -> datetime | None:
        async with self._reader.connect() as conn:
            due: datetime | None = (
                await conn.execute(
                    select(func.min(OutboxDelivery.next_attempt_at)).where(
                        OutboxDelivery.endpoint.in_([s.name for s in self._sinks]), OutboxDelivery.status == PENDING
                    )
                )
            ).scalar_one_or_none()
        return due
