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
   the aggregate's later events; `python -m gateway events retry-dead` puts it back in line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TextIO

import httpx
from sqlalchemy import delete, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from commerce.events.models import DEAD, DELIVERED, PENDING, OutboxDelivery, OutboxEndpoint, OutboxEvent
from commerce.events.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, Endpoint, sign
from core.clock import Clock
from core.db import dialect_insert, writer
from core.settings import Settings

__all__ = [
    "FANOUT_HORIZON",
    "OutboundEvent",
    "Relay",
    "RelayOptions",
    "RelayReport",
    "Sink",
    "StdoutSink",
    "WebhookSink",
    "backlog",
    "prune",
    "retry_dead",
]

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


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    id: int
    type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    data: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The JSON every endpoint receives (and `--stdout` prints, one per line)."""
        return {
            "id": self.id,
            "type": self.type,
            "aggregate": {"type": self.aggregate_type, "id": self.aggregate_id},
            "occurredAt": self.occurred_at.isoformat(),
            "data": self.data,
        }

    def json_bytes(self) -> bytes:
        return json.dumps(self.body(), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class Sink(Protocol):
    """Where one endpoint's events go. `deliver` returns None on success, else a short reason."""

    @property
    def name(self) -> str: ...

    @property
    def event_patterns(self) -> Sequence[str]: ...

    async def deliver(self, event: OutboundEvent) -> str | None: ...


class WebhookSink:
    """POSTs each event as signed JSON; any 2xx is a delivery, anything else a failure to retry."""

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient, clock: Clock) -> None:
        self._endpoint = endpoint
        self._client = client
        self._clock = clock

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def event_patterns(self) -> Sequence[str]:
        return self._endpoint.events

    async def deliver(self, event: OutboundEvent) -> str | None:
        body = event.json_bytes()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "omnigate-relay",
            EVENT_ID_HEADER: str(event.id),
            EVENT_TYPE_HEADER: event.type,
            SIGNATURE_HEADER: sign(self._endpoint.secret, int(self._clock.now().timestamp()), body),
        }
        try:
            response = await self._client.post(self._endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__  # never the URL or a body: they may carry secrets
        return None if response.is_success else f"HTTP {response.status_code}"


class StdoutSink:
    """Prints each event as one JSON line: for piping into another tool, or watching."""

    def __init__(self, stream: TextIO, name: str = "stdout", events: Sequence[str] = ("*",)) -> None:
        self._stream = stream
        self._name = name
        self._events = tuple(events)

    @property
    def name(self) -> str:
        return self._name

    @property
    def event_patterns(self) -> Sequence[str]:
        return self._events

    async def deliver(self, event: OutboundEvent) -> str | None:
        self._stream.write(event.json_bytes().decode() + "\n")
        self._stream.flush()
        return None


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
        self._engine = writer(engine)
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
        async with self._engine.connect() as conn:
            due: datetime | None = (
                await conn.execute(
                    select(func.min(OutboxDelivery.next_attempt_at)).where(
                        OutboxDelivery.endpoint.in_([s.name for s in self._sinks]), OutboxDelivery.status == PENDING
                    )
                )
            ).scalar_one_or_none()
        return due


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
