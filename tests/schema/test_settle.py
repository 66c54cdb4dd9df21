"""`settle` awaits resolver coroutines together the way Tasks would: batching and contexts intact."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

import pytest
from aiodataloader import DataLoader

from schema.compiled.settle import settle

current_span: ContextVar[str] = ContextVar("current_span", default="root")


async def test_loads_from_all_awaitables_are_batched_into_one_call_per_round():
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[int]:
        batches.append(list(keys))
        return [key * 10 for key in keys]

    loader = DataLoader(batch)

    async def twice(key: int) -> int:
        first = await loader.load(key)
        return first + await loader.load(key + 100)

    assert await settle([twice(k) for k in (1, 2, 3)]) == [1020, 1040, 1060]
    assert batches == [[1, 2, 3], [101, 102, 103]]


async def test_errors_are_returned_in_place_and_the_others_still_finish():
    async def fails() -> None:
        await asyncio.sleep(0)
        raise LookupError("no price")

    async def works() -> str:
        await asyncio.sleep(0)
        return "ok"

    results = await settle([works(), fails(), works()])
    assert results[0] == results[2] == "ok"
    assert isinstance(results[1], LookupError)


async def test_a_context_variable_set_by_one_awaitable_never_leaks_into_another_or_the_caller():
    seen: dict[str, str] = {}

    async def traced(name: str) -> None:
        current_span.set(name)
        await asyncio.sleep(0)
        seen[name] = current_span.get()

    async def untraced() -> None:
        await asyncio.sleep(0)
        seen["untraced"] = current_span.get()

    await settle([traced("a"), untraced(), traced("b")])
    assert seen == {"a": "a", "untraced": "root", "b": "b"}
    assert current_span.get() == "root"


async def test_an_awaitable_waiting_for_a_lock_another_holds_still_finishes():
    """settle must step whichever future is done: waiting for all first would deadlock here."""
    lock = asyncio.Lock()
    order: list[str] = []

    async def holder() -> str:
        async with lock:
            await asyncio.sleep(0.01)
            order.append("holder")
        return "held"

    async def waiter() -> str:
        async with lock:
            order.append("waiter")
        return "waited"

    assert await asyncio.wait_for(settle([holder(), waiter()]), 2) == ["held", "waited"]
    assert order == ["holder", "waiter"]


async def test_cancelling_throws_cancelled_error_into_each_awaitable_and_lets_its_cleanup_await():
    """As with Tasks: `finally` and `async with` blocks run, and may await (a connection's release)."""
    cleaned: list[str] = []
    started = asyncio.Event()

    class Connection:
        async def __aenter__(self) -> None:
            return None

        async def __aexit__(self, *exc: object) -> None:
            await asyncio.sleep(0.01)  # giving a connection back takes a round trip
            cleaned.append("released")

    async def resolver(name: str) -> None:
        try:
            async with Connection():
                started.set()
                await asyncio.sleep(10)
        except asyncio.CancelledError:
            cleaned.append(f"{name} cancelled")
            raise
        finally:
            await asyncio.sleep(0)
            cleaned.append(f"{name} finally")

    running = asyncio.ensure_future(settle([resolver("a"), resolver("b")]))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(cleaned) == ["a cancelled", "a finally", "b cancelled", "b finally", "released", "released"]


async def test_batches_started_while_settling_are_fetched_by_settle_one_after_another_without_tasks():
    """A BatchLoader's batch is fetched inside settle once every awaitable added its keys: no Task per batch."""
    from schema.loaders import BatchLoader

    fetched: list[tuple[str, list[int]]] = []
    in_flight: list[str] = []

    def fetcher(name: str):
        async def fetch(keys: list[int]) -> dict[int, str]:
            in_flight.append(name)
            assert in_flight == [name], "fetches overlap"
            fetched.append((name, list(keys)))
            await asyncio.sleep(0)
            in_flight.remove(name)
            return {k: f"{name}{k}" for k in keys}

        return fetch

    prices, stock = BatchLoader(fetcher("p")), BatchLoader(fetcher("s"))
    loop = asyncio.get_running_loop()
    created = 0
    create_task = loop.create_task

    def counting(*args, **kwargs):
        nonlocal created
        created += 1
        return create_task(*args, **kwargs)

    async def both(key: int) -> str:
        price = await prices.load(key)
        return f"{price}/{await stock.load(key)}"

    loop.create_task = counting  # type: ignore[method-assign]
    try:
        assert await settle([both(1), both(2), both(3)]) == ["p1/s1", "p2/s2", "p3/s3"]
    finally:
        del loop.create_task
    assert fetched == [("p", [1, 2, 3]), ("s", [1, 2, 3])]
    assert created == 0


async def test_a_fetch_waiting_on_a_batch_queued_behind_it_still_finishes():
    from schema.loaders import BatchLoader

    inner = BatchLoader(lambda keys: _values(keys, "i"))

    async def outer_fetch(keys: list[int]) -> dict[int, str]:
        found = await inner.load_many(keys)  # a batch started by a fetch: queued behind it
        return {k: f"o{v}" for k, v in zip(keys, found, strict=True)}

    outer = BatchLoader(outer_fetch)
    assert await asyncio.wait_for(settle([outer.load(1), outer.load(2)]), 2) == ["oi1", "oi2"]


async def _values(keys: list[int], prefix: str) -> dict[int, str]:
    await asyncio.sleep(0)
    return {k: f"{prefix}{k}" for k in keys}
