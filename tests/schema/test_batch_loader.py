"""BatchLoader: keys asked for in one loop turn are fetched together; each key once per request."""

from __future__ import annotations

import asyncio

import pytest

from schema import loaders
from schema.loaders import EAGER, BatchLoader


def recording(batches: list[list[int]], fail: bool = False):
    async def fetch(keys: list[int]) -> dict[int, str]:
        batches.append(list(keys))
        await asyncio.sleep(0)
        if fail:
            raise LookupError("database is down")
        return {k: f"v{k}" for k in keys if k != 404}

    return fetch


async def test_loads_and_load_many_of_one_turn_share_one_fetch_and_absent_keys_get_the_default():
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches), default="none")
    one, many, again = await asyncio.gather(loader.load(1), loader.load_many([2, 404, 1]), loader.load(2))
    assert (one, many, again) == ("v1", ["v2", "none", "v1"], "v2")
    assert batches == [[1, 2, 404]]
    assert await loader.load_many([1, 2]) == ["v1", "v2"]  # cached: no second fetch
    assert batches == [[1, 2, 404]]


async def test_a_key_already_being_fetched_is_not_fetched_again():
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches))
    first = asyncio.ensure_future(loader.load_many([1, 2]))
    while not batches:  # until the first batch is on its way
        await asyncio.sleep(0)
    assert await loader.load_many([2, 3]) == ["v2", "v3"]
    assert await first == ["v1", "v2"]
    assert batches == [[1, 2], [3]]


async def test_a_failed_fetch_fails_every_caller_and_is_retried_next_time():
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches, fail=True))
    results = await asyncio.gather(loader.load(1), loader.load_many([1, 2]), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    with pytest.raises(LookupError):
        await loader.load(1)
    assert batches == [[1, 2], [1]]


async def test_repeated_keys_of_one_load_many_are_fetched_once_and_answered_in_place():
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches), default="none")
    assert await loader.load_many([3, 1, 3, 404, 1]) == ["v3", "v1", "v3", "none", "v1"]
    assert batches == [[3, 1, 404]]


async def test_eager_loads_fetch_at_once_what_is_not_cached_in_batches_of_the_usual_size(monkeypatch):
    """While the compiled executor awaits one plan's batch resolvers in turn (EAGER), a load waits
    for no other keys: it fetches its own missing ones straight away, each at most once."""
    monkeypatch.setattr(loaders, "MAX_BATCH_SIZE", 2)
    batches: list[list[int]] = []
    fetched_by: list[asyncio.Task[object] | None] = []
    record = recording(batches)

    async def fetch(keys: list[int]) -> dict[int, str]:
        fetched_by.append(asyncio.current_task())
        return await record(keys)

    loader = BatchLoader(fetch, default="none")
    token = EAGER.set(asyncio.current_task())
    try:
        assert await loader.load_many([3, 1, 3, 404, 1]) == ["v3", "v1", "v3", "none", "v1"]
        assert batches == [[3, 1], [404]]
        assert fetched_by == [asyncio.current_task()] * 2  # in the caller's own task: no Task of its own
        assert await loader.load_many([1, 404, 5]) == ["v1", "none", "v5"]  # only 5 was missing
        assert await loader.load(5) == "v5"
        assert batches == [[3, 1], [404], [5]]
    finally:
        EAGER.reset(token)


async def test_an_eager_load_waits_for_a_batch_already_under_way():
    """A load of the same loader under way (started before EAGER was set) is joined, not repeated."""
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches))
    first = asyncio.ensure_future(loader.load_many([1, 2]))
    while not batches:
        await asyncio.sleep(0)
    token = EAGER.set(asyncio.current_task())
    try:
        assert await loader.load_many([2, 3]) == ["v2", "v3"]
    finally:
        EAGER.reset(token)
    assert await first == ["v1", "v2"]
    assert batches == [[1, 2], [3]]


async def test_eager_loads_run_side_by_side_in_tasks_of_their_own_batch_as_usual():
    """EAGER holds for the task that set it: loads it starts in Tasks (a gather) share one batch."""
    batches: list[list[int]] = []
    loader = BatchLoader(recording(batches))
    token = EAGER.set(asyncio.current_task())
    try:
        assert await asyncio.gather(loader.load_many([1, 2]), loader.load_many([2, 3])) == [["v1", "v2"], ["v2", "v3"]]
    finally:
        EAGER.reset(token)
    assert batches == [[1, 2, 3]]


async def test_an_eager_fetch_answering_other_keys_gives_the_default_for_those_asked():
    async def fetch(keys: list[str]) -> dict[str, str]:
        return {"other": "x", "b": "vb"}  # as many entries as keys asked for, not all of them

    loader = BatchLoader(fetch, default="none")
    token = EAGER.set(asyncio.current_task())
    try:
        assert await loader.load_many(["a", "b"]) == ["none", "vb"]
    finally:
        EAGER.reset(token)
