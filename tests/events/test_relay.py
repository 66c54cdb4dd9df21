"""The relay through a real HTTP receiver: order per aggregate, retries, signatures, dead letters."""

from __future__ import annotations

import asyncio
import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from commerce.events.admin import backlog, prune, retry_dead
from commerce.events.models import DEAD, DELIVERED, OutboxDelivery, OutboxEvent
from commerce.events.outbox import emit
from commerce.events.relay import Relay, RelayOptions
from commerce.events.sinks import StdoutSink, WebhookSink
from commerce.events.webhooks import Endpoint, WebhookConfigError, load_endpoints
from core.clock import SystemClock
from gateway.runtime import Runtime
from tests.events.receiver import Attempt, Receiver, receiving

SECRET = "test-webhook-secret-0123456789"
FAST = RelayOptions(
    max_attempts=4, backoff_seconds=0.01, backoff_max_seconds=0.05, timeout_seconds=5, poll_seconds=0.01
)


async def _emit_interleaved(runtime: Runtime, aggregates: int, per_aggregate: int) -> list[tuple[str, int]]:
    """Events of several orders, interleaved, each in its own transaction: (order, sequence) in emit order."""
    emitted = []
    for seq in range(per_aggregate):
        for order in range(aggregates):
            async with runtime.services.sessions() as session, session.begin():
                await emit(
                    session,
                    aggregate_type="order",
                    aggregate_id=str(order),
                    event_type="order.updated",
                    payload={"orderKey": str(order), "seq": seq},
                )
            emitted.append((str(order), seq))
    return emitted


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def _relay(runtime: Runtime, receiver: Receiver, client: httpx.AsyncClient, options: RelayOptions = FAST) -> Relay:
    endpoint = Endpoint(name="erp", url=receiver.url, secret=SECRET)
    return Relay(runtime.services.engine, [WebhookSink(endpoint, client, SystemClock())], options, SystemClock())


def _assert_in_order_per_aggregate(attempts: list[Attempt]) -> None:
    """No attempt at an aggregate's next event before its previous event was delivered."""
    delivered_upto: dict[str, int] = defaultdict(lambda: -1)
    for attempt in attempts:
        seq = attempt.body["data"]["seq"]
        assert seq == delivered_upto[attempt.aggregate] + 1, f"{attempt.aggregate}: seq {seq} out of order"
        if attempt.ok:
            delivered_upto[attempt.aggregate] = seq


async def test_a_receiver_that_fails_twice_still_gets_every_event_in_order_and_signed(
    runtime: Runtime, http_client
) -> None:
    await _emit_interleaved(runtime, aggregates=3, per_aggregate=4)
    async with receiving(Receiver(SECRET, fail_first=2)) as receiver:
        report = await _relay(runtime, receiver, http_client).drain(wait_for_retries=True)
    assert (report.delivered, report.dead) == (12, 0)
    assert len(receiver.attempts) == 36  # two failures, then the delivery, for each of the 12 events
    assert all(a.signed for a in receiver.attempts)
    _assert_in_order_per_aggregate(receiver.attempts)
    first = receiver.delivered()[0]
    assert first.headers["x-omnigate-event-type"] == "order.updated"
    assert first.headers["x-omnigate-event-id"] == str(first.event_id)
    assert first.body["aggregate"] == {"type": "order", "id": "0"} and first.body["data"] == {"orderKey": "0", "seq": 0}


async def test_a_signature_does_not_verify_with_another_secret_or_body(runtime: Runtime, http_client) -> None:
    await _emit_interleaved(runtime, aggregates=1, per_aggregate=1)
    async with receiving(Receiver("another-secret-0123456789")) as receiver:
        await _relay(runtime, receiver, http_client).drain()
    assert receiver.attempts and not any(a.signed for a in receiver.attempts)


async def test_an_event_is_dead_lettered_after_the_maximum_attempts_and_can_be_retried(
    runtime: Runtime, http_client
) -> None:
    await _emit_interleaved(runtime, aggregates=2, per_aggregate=2)
    async with runtime.services.sessions() as session:
        first_of_order_0 = (
            await session.execute(select(func.min(OutboxEvent.id)).where(OutboxEvent.aggregate_id == "0"))
        ).scalar_one()
    async with receiving(Receiver(SECRET, always_fail={first_of_order_0})) as receiver:
        report = await _relay(runtime, receiver, http_client).drain(wait_for_retries=True)
        dead_attempts = [a for a in receiver.attempts if a.event_id == first_of_order_0]
        assert len(dead_attempts) == FAST.max_attempts and report.dead == 1
        assert report.delivered == 3  # the dead letter no longer holds back its order's later event
        assert await backlog(runtime.services.engine) == {"erp": {DEAD: 1}}

        receiver.always_fail.clear()  # the receiver is fixed: the operator retries the dead letters
        assert await retry_dead(runtime.services.engine, SystemClock()) == 1
        again = await _relay(runtime, receiver, http_client).drain(wait_for_retries=True)
    assert again.delivered == 1 and receiver.delivered()[-1].event_id == first_of_order_0
    assert await backlog(runtime.services.engine) == {}


async def test_the_relay_resumes_where_it_stopped_without_sending_anything_twice(runtime: Runtime, http_client) -> None:
    await _emit_interleaved(runtime, aggregates=2, per_aggregate=2)
    async with receiving(Receiver(SECRET)) as receiver:
        assert (await _relay(runtime, receiver, http_client).drain()).delivered == 4
        await _emit_interleaved(runtime, aggregates=1, per_aggregate=1)
        assert (await _relay(runtime, receiver, http_client).drain()).delivered == 1  # a fresh relay: a restart
    ids = [a.event_id for a in receiver.attempts]
    assert len(ids) == len(set(ids)) == 5


async def test_two_relay_replicas_share_the_work_and_keep_the_order(runtime: Runtime, http_client) -> None:
    await _emit_interleaved(runtime, aggregates=6, per_aggregate=5)
    options = RelayOptions(
        max_attempts=10, backoff_seconds=0.01, backoff_max_seconds=0.02, batch_size=4, poll_seconds=0.01
    )
    async with receiving(Receiver(SECRET, fail_first=1)) as receiver:
        reports = await asyncio.gather(
            *(_relay(runtime, receiver, http_client, options).drain(wait_for_retries=True) for _ in range(2))
        )
    assert sum(r.delivered for r in reports) == 30 and all(r.dead == 0 for r in reports)
    _assert_in_order_per_aggregate(receiver.attempts)
    delivered = [a.event_id for a in receiver.delivered()]
    assert len(delivered) == len(set(delivered)) == 30  # claimed by one replica at a time: never twice


async def test_an_endpoint_gets_only_the_event_types_it_asked_for(runtime: Runtime, http_client) -> None:
    async with runtime.services.sessions() as session, session.begin():
        for event_type in ("order.placed", "stock.moved", "order_line.x", "orderXplaced"):
            await emit(session, aggregate_type="order", aggregate_id="1", event_type=event_type, payload={"seq": 0})
    async with receiving(Receiver(SECRET)) as receiver:
        endpoint = Endpoint(name="erp", url=receiver.url, secret=SECRET, events=("order.*",))
        relay = Relay(runtime.services.engine, [WebhookSink(endpoint, http_client, SystemClock())], FAST, SystemClock())
        await relay.drain()
    assert [a.body["type"] for a in receiver.attempts] == ["order.placed"]


async def test_stdout_prints_each_event_as_a_json_line_once(runtime: Runtime) -> None:
    await _emit_interleaved(runtime, aggregates=2, per_aggregate=1)
    out = io.StringIO()
    relay = Relay(runtime.services.engine, [StdoutSink(out)], FAST, SystemClock())
    await relay.drain()
    await relay.drain()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["aggregate"]["id"], e["data"]["seq"]) for e in lines] == [("0", 0), ("1", 0)]
    async with runtime.services.sessions() as session:
        statuses = (await session.execute(select(OutboxDelivery.status))).scalars().all()
    assert statuses == [DELIVERED, DELIVERED]


def test_the_webhooks_file_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "hooks.toml"
    good.write_text(
        f'[[endpoints]]\nname = "erp"\nurl = "https://erp.example/in"\nsecret = "{SECRET}"\nevents = ["stock.*"]\n'
    )
    assert load_endpoints(good) == [Endpoint("erp", "https://erp.example/in", SECRET, ("stock.*",))]
    as_json = tmp_path / "hooks.json"
    as_json.write_text(json.dumps({"endpoints": [{"name": "wms", "url": "http://wms:8080/", "secret": SECRET}]}))
    assert load_endpoints(as_json)[0].events == ("*",)
    assert SECRET not in repr(load_endpoints(as_json))
    for broken in (
        '[[endpoints]]\nname = "erp"\nurl = "ftp://x"\nsecret = "' + SECRET + '"\n',
        '[[endpoints]]\nname = "erp"\nurl = "https://x"\nsecret = "short"\n',
        '[[endpoints]]\nname = "Bad Name"\nurl = "https://x"\nsecret = "' + SECRET + '"\n',
        '[[endpoints]]\nname = "erp"\nurl = "https://x"\nsecret = "' + SECRET + '"\ntypo = 1\n',
    ):
        good.write_text(broken)
        with pytest.raises(WebhookConfigError):
            load_endpoints(good)


async def test_prune_forgets_delivered_events_and_keeps_what_is_unfinished(runtime: Runtime) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    async with runtime.services.sessions() as session, session.begin():
        for aggregate in ("done", "stuck", "new"):
            await emit(
                session,
                aggregate_type="order",
                aggregate_id=aggregate,
                event_type=f"order.{aggregate}",
                payload={},
                occurred_at=old if aggregate != "new" else None,
            )
    relay = Relay(runtime.services.engine, [StdoutSink(io.StringIO(), events=("order.done",))], FAST, SystemClock())
    await relay.drain()
    waiting = Relay(
        runtime.services.engine, [StdoutSink(io.StringIO(), name="wms", events=("order.stuck",))], FAST, SystemClock()
    )
    await waiting._fan_out(waiting._sinks[0])  # fanned out, not delivered yet
    assert await prune(runtime.services.engine, datetime.now(UTC) - timedelta(days=30)) == (1, 1)
    async with runtime.services.sessions() as session:
        left = (await session.execute(select(OutboxEvent.aggregate_id).order_by(OutboxEvent.id))).scalars().all()
    assert left == ["stuck", "new"]


async def test_an_event_committed_after_a_newer_one_is_still_delivered(runtime: Runtime) -> None:
    """PostgreSQL hands out ids at insert: a transaction holding id N may commit after N+1 was relayed."""
    if runtime.services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: ids commit in order there")
    out = io.StringIO()
    relay = Relay(runtime.services.engine, [StdoutSink(out)], FAST, SystemClock())
    async with runtime.services.sessions() as slow:
        await slow.begin()
        await emit(slow, aggregate_type="order", aggregate_id="slow", event_type="order.placed", payload={"seq": 0})
        await _emit_interleaved(runtime, aggregates=1, per_aggregate=1)  # a newer id, committed first
        await relay.drain()
        await slow.commit()
    await relay.drain()
    delivered = [json.loads(line)["aggregate"]["id"] for line in out.getvalue().splitlines()]
    assert delivered == ["0", "slow"]
