"""Event relay throughput: outbox events delivered per second to a local webhook receiver.

    .venv/bin/python bench/relay.py [--events 3000] [--aggregates 300]

Migrates a fresh SQLite database (or uses OMNIGATE_DATABASE_URL, already migrated), emits
`--events` events over `--aggregates` orders, and drains them through the relay into a real
HTTP receiver on a loopback port: with one relay, then (new events, a new endpoint) with two
relays at once as two replicas would. Prints events/s and checks that every event arrived
once and in order per aggregate. Stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce.events.outbox import emit  # noqa: E402
from commerce.events.relay import Relay, RelayOptions  # noqa: E402
from commerce.events.sinks import WebhookSink  # noqa: E402
from commerce.events.webhooks import Endpoint  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.db import create_engine, session_factory  # noqa: E402
from core.migrate import migrate  # noqa: E402
from tests.events.receiver import Receiver, receiving  # noqa: E402

SECRET = "bench-relay-secret-0123456789"


async def _emit(engine: object, run: str, events: int, aggregates: int) -> None:
    sessions = session_factory(engine)  # type: ignore[arg-type]
    per_transaction = 50
    for start in range(0, events, per_transaction):
        async with sessions() as session, session.begin():
            for n in range(start, min(events, start + per_transaction)):
                await emit(
                    session,
                    aggregate_type="order",
                    aggregate_id=f"{run}-{n % aggregates}",
                    event_type=f"bench.{run}",
                    payload={"seq": n // aggregates},
                )


def _check(receiver: Receiver, events: int) -> str:
    seen: dict[str, int] = defaultdict(lambda: -1)
    for attempt in receiver.delivered():
        seq = attempt.body["data"]["seq"]
        if seq != seen[attempt.aggregate] + 1:
            return f"OUT OF ORDER at {attempt.aggregate}"
        seen[attempt.aggregate] = seq
    ids = [a.event_id for a in receiver.delivered()]
    if len(ids) != events or len(set(ids)) != events:
        return f"LOST OR DUPLICATED: {len(set(ids))} distinct of {events}, {len(ids)} deliveries"
    return "every event once, in order per aggregate"


async def _round(engine: object, replicas: int, events: int, aggregates: int) -> None:
    run = uuid.uuid4().hex[:8]
    await _emit(engine, run, events, aggregates)
    options = RelayOptions(batch_size=100, concurrency=16, poll_seconds=0.05)
    async with receiving(Receiver(SECRET)) as receiver, httpx.AsyncClient(timeout=10) as client:
        endpoint = Endpoint(name=f"bench-{run}", url=receiver.url, secret=SECRET, events=(f"bench.{run}",))
        relays = [
            Relay(engine, [WebhookSink(endpoint, client, SystemClock())], options, SystemClock())  # type: ignore[arg-type]
            for _ in range(replicas)
        ]
        started = time.perf_counter()
        await asyncio.gather(*(relay.drain() for relay in relays))
        elapsed = time.perf_counter() - started
    print(
        f"{engine.dialect.name:10} {replicas} relay(s): {events} events over {aggregates} aggregates "  # type: ignore[attr-defined]
        f"in {elapsed:.2f}s = {events / elapsed:,.0f} events/s; {_check(receiver, events)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--aggregates", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        url = os.environ.get("OMNIGATE_DATABASE_URL") or f"sqlite+aiosqlite:///{workdir}/relay.db"
        engine = create_engine(url)
        try:
            if "OMNIGATE_DATABASE_URL" not in os.environ:
                await migrate(engine)
            for replicas in (1, 2):
                await _round(engine, replicas, args.events, args.aggregates)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
