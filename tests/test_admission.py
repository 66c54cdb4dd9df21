"""Admission: a worker runs at most N GraphQL requests at once, the others wait their turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from core.settings import SettingsError
from gateway import graphql_http
from gateway.admission import SQLITE_LIMIT, Admission, admission_limit
from gateway.runtime import build_runtime
from tests.conftest import GatewayBuilder

QUERY = {"query": "{ channels { code } }"}


@pytest.fixture
async def held(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[list[str], asyncio.Event]]:
    """Every GraphQL request's answer, logged as it starts and ends, with the first held until the event is set."""
    log: list[str] = []
    release = asyncio.Event()
    answer = graphql_http._answer

    async def logged(request: Any, runtime: Any, *rest: Any) -> Any:
        n = sum(entry.startswith("start") for entry in log)
        log.append(f"start {n}")
        if n == 0:
            await release.wait()
        try:
            return await answer(request, runtime, *rest)
        finally:
            log.append(f"end {n}")

    monkeypatch.setattr(graphql_http, "_answer", logged)
    yield log, release


@pytest.fixture
def limited(gateway: GatewayBuilder) -> Callable[[int], Awaitable[httpx.AsyncClient]]:
    """A gateway running at most `limit` GraphQL requests at once (0: no limit)."""

    async def build(limit: int) -> httpx.AsyncClient:
        http = await gateway(max_concurrent_requests=limit)
        gateway.runtime.admission.lend_after = 60.0  # the first request is held on purpose: it must not lend its slot
        return http

    return build


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def test_a_request_waits_for_a_free_slot_and_is_then_answered(limited, held):
    log, release = held
    http = await limited(1)
    first = asyncio.ensure_future(http.post("/graphql", json=QUERY))
    await _until(lambda: log == ["start 0"])
    second = asyncio.ensure_future(http.post("/graphql", json=QUERY))
    await asyncio.sleep(0.05)
    assert log == ["start 0"]  # the second has not started while the first holds the only slot
    health = await http.get("/health")
    assert health.status_code == 200  # only GraphQL requests queue
    release.set()
    answers = await asyncio.gather(first, second)
    assert log == ["start 0", "end 0", "start 1", "end 1"]
    assert [a.json()["data"]["channels"] for a in answers] == [answers[0].json()["data"]["channels"]] * 2
    assert answers[0].json()["data"]["channels"]


async def test_with_no_limit_requests_run_side_by_side(limited, held):
    log, release = held
    http = await limited(0)
    first = asyncio.ensure_future(http.post("/graphql", json=QUERY))
    second = asyncio.ensure_future(http.post("/graphql", json=QUERY))
    await _until(lambda: "end 1" in log)  # answered while the first is still held
    assert log == ["start 0", "start 1", "end 1"]
    release.set()
    assert {(await first).status_code, (await second).status_code} == {200}


async def test_at_most_the_limit_run_at_once_in_arrival_order():
    admission = Admission(2)
    running: list[int] = []
    entered: list[int] = []
    peak = 0
    gates = [asyncio.Event() for _ in range(5)]

    async def request(n: int) -> None:
        nonlocal peak
        async with admission.slot():
            entered.append(n)
            running.append(n)
            peak = max(peak, len(running))
            await gates[n].wait()
            running.remove(n)

    tasks = [asyncio.ensure_future(request(n)) for n in range(5)]
    await _until(lambda: entered == [0, 1])
    await asyncio.sleep(0.02)
    assert entered == [0, 1]
    for gate in gates:
        gate.set()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert entered == [0, 1, 2, 3, 4]
    assert peak == 2


async def test_a_slow_request_lends_its_slot_to_the_next_in_line():
    admission = Admission(1, lend_after=0.05)
    slow_done = asyncio.Event()
    order: list[str] = []

    async def slow() -> None:
        async with admission.slot():
            order.append("slow in")
            await slow_done.wait()
        order.append("slow out")

    async def quick() -> None:
        async with admission.slot():
            order.append("quick")

    tasks = [asyncio.ensure_future(slow()), asyncio.ensure_future(quick())]
    await _until(lambda: "quick" in order)  # got in while the slow one still runs
    assert order == ["slow in", "quick"]
    slow_done.set()
    await asyncio.gather(*tasks)
    third: list[str] = []
    async with admission.slot():  # the slot was given back once, not twice: still one at a time
        third.append("in")
        assert admission._semaphore().locked()
    assert third == ["in"]


async def test_a_request_cancelled_while_waiting_takes_no_slot():
    admission = Admission(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with admission.slot():
            await release.wait()

    async def waiter() -> None:
        async with admission.slot():
            raise AssertionError("a cancelled waiter never runs")

    held = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.ensure_future(waiter())
    await asyncio.sleep(0.01)
    cancelled.cancel()
    release.set()
    await held
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    async with admission.slot():  # free again: nobody holds it
        pass


@pytest.mark.parametrize(
    ("setting", "url", "limit"),
    [
        (-1, "sqlite+aiosqlite:///./var/omnigate.db", SQLITE_LIMIT),
        (-1, "postgresql+asyncpg://127.0.0.1/omnigate", 0),  # round trips: no automatic limit
        (0, "sqlite+aiosqlite:///./var/omnigate.db", 0),
        (8, "postgresql+asyncpg://127.0.0.1/omnigate", 8),
    ],
)
def test_the_automatic_limit_depends_on_the_database(setting, url, limit):
    assert admission_limit(setting, url) == limit


def test_a_negative_limit_other_than_automatic_stops_start_up(settings, clock):
    with pytest.raises(SettingsError, match="MAX_CONCURRENT_REQUESTS must be -1"):
        build_runtime(settings.replace(max_concurrent_requests=-2), clock)


async def test_a_slow_upload_holds_no_slot(gateway: GatewayBuilder) -> None:
    """The body is read before a slot is taken: a client sending its body slowly (or never) held a
    slot idle, and on SQLite's two slots two such clients stalled every other request."""
    http = await gateway(max_concurrent_requests=1)
    gateway.runtime.admission = Admission(1, lend_after=60)  # no lending: the slot is the slot
    app = http._transport.app  # type: ignore[attr-defined]
    body = b'{"query": "{ channels { code } }"}'
    uploaded = asyncio.Event()

    async def slow_receive() -> dict[str, Any]:
        await uploaded.wait()
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    slow = asyncio.create_task(app(scope, slow_receive, send))
    await asyncio.sleep(0.05)  # the slow client is in, its body still on the way
    answered = await asyncio.wait_for(http.post("/graphql", json=QUERY), 10)
    assert answered.status_code == 200 and not slow.done()
    uploaded.set()
    await asyncio.wait_for(slow, 10)
    assert next(m["status"] for m in sent if m["type"] == "http.response.start") == 200
