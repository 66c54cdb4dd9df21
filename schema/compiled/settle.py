"""Await many resolver results together without creating a Task for each.

`asyncio.gather` wraps every coroutine in a Task: an object, a scheduling round trip through the
event loop per step, and a context copy. For a page of 24 products that is ~150 Tasks, a tenth
of the request's CPU. `settle` steps the coroutines itself, exactly as a Task would:

1. Start every awaitable (one `send(None)` each) before waiting for any, so that the DataLoader
   loads of all of them are queued before a loader dispatches its batch (batching intact).
2. Wait, in one `asyncio.wait`, until any future they are blocked on is done; step again
   those whose future is done; repeat until all have finished.

Each awaitable is stepped inside its own copy of the context, as a Task does, so a context
variable (an OpenTelemetry span, say) set by one resolver never leaks into another.

While it steps them, settle is the loaders' `BATCH_RUNNER` (schema/loaders.py): a batch a
resolver starts is fetched by settle itself once every awaitable of the round has added its
keys, as one more awaitable (in a copy of the context of the resolver that started it, as the
batch's Task would have been), instead of by a Task of its own two loop turns later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import Context, copy_context
from typing import Any

from schema.loaders import BATCH_RUNNER

__all__ = ["settle"]

_detached: set[asyncio.Future[Any]] = set()  # batch fetches left to finish on their own (settle was cancelled)


class _Step:
    """One awaitable in flight: its iterator, its context, and the future it waits on.

    `index` is its place in the results; -1 for a batch fetch, whose result nobody reads.
    """

    __slots__ = ("blocked_on", "context", "index", "iterator", "iterator_source")

    def __init__(self, index: int, awaitable: Awaitable[Any]) -> None:
        self.index = index
        self.iterator_source: Any = awaitable  # a batch fetch's coroutine, started as a Task if settle is cancelled
        self.iterator = awaitable.__await__()
        self.context: Context = copy_context()
        self.blocked_on: Any = None


class _BatchRunner:
    """The loaders' BATCH_RUNNER during one settle: batches started while it steps are fetched by it.

    One fetch at a time (a request's reads share one connection, which runs one statement at
    once anyway): the rest wait in `queue`, so settle mostly waits on one future, which it can
    await directly (a loop turn less per statement than watching several).
    """

    __slots__ = ("in_flight", "internal", "queue", "stepping")

    def __init__(self) -> None:
        self.stepping = False
        self.queue: list[_Step] = []  # batches to fetch, in the order they were started
        self.in_flight: _Step | None = None
        self.internal: set[Any] = set()  # batch futures only our own fetches complete

    def run_batch(self, fetch: Any, done: asyncio.Future[None]) -> bool:
        if not self.stepping:
            return False  # e.g. from a Task a resolver started: that batch gets its own Task
        self.queue.append(_Step(-1, fetch))  # in the context of the resolver starting the batch
        self.internal.add(done)
        return True

    def next_fetch(self, running: list[_Step]) -> _Step | None:
        """The fetch to start now, if the one in flight (if any) has finished."""
        if not self.queue:
            return None
        if self.in_flight is not None and self.in_flight in running:  # _Step compares by identity
            return None
        self.in_flight = self.queue.pop(0)
        return self.in_flight


async def settle(awaitables: list[Awaitable[Any]]) -> list[Any]:
    """Each awaitable's result, or the exception it raised (like gather(return_exceptions=True))."""
    results: list[Any] = [None] * len(awaitables)
    runner = _BatchRunner()
    token = BATCH_RUNNER.set(runner)
    try:
        running = [_Step(index, awaitable) for index, awaitable in enumerate(awaitables)]
    finally:
        BATCH_RUNNER.reset(token)  # the steps' contexts hold it; the caller's does not
    try:
        while running:
            runner.stepping = True
            try:
                running = _advance(running, results)
                # Batches this round started are fetched now (every key is in), one after another.
                while (fetch := runner.next_fetch(running)) is not None:
                    running.extend(_advance([fetch], results))
                    running = _advance(running, results) if _any_done(running) else running
            finally:
                runner.stepping = False
            if running and not await _wait(running, runner.internal) and runner.queue:
                runner.in_flight = None  # the fetch in flight waits on a queued one: start that too
    except BaseException:
        # Cancelled (a client went away): as Task.cancel() does, cancel what each awaitable
        # waits on and throw CancelledError into it, so its `finally` and `async with` blocks
        # run, awaiting if they must (a connection going back to the pool); then re-raise.
        for step in runner.queue:  # never started: left to finish as the batch's Task would
            task: asyncio.Future[Any] = asyncio.get_running_loop().create_task(
                step.iterator_source, context=step.context
            )
            _detached.add(task)
            task.add_done_callback(_detached.discard)
        await asyncio.gather(*(_cancel(step) for step in running), return_exceptions=True)
        raise
    finally:
        # The last fetch's context holds the runner, which holds that fetch: a cycle that would
        # keep the request's loaders and every row they cached alive until the cyclic collector.
        runner.in_flight = None
    return results


async def _cancel(step: _Step) -> None:
    """Run one suspended awaitable to its end with CancelledError, as its Task would."""
    if step.blocked_on is not None and not step.blocked_on.done():
        step.blocked_on.cancel()
    throw: BaseException | None = asyncio.CancelledError()
    while True:
        try:
            if throw is not None:
                yielded = step.context.run(step.iterator.throw, throw)
            else:
                yielded = step.context.run(step.iterator.send, None)
        except BaseException:  # StopIteration, CancelledError or whatever its cleanup raised
            return
        throw = None
        if yielded is None:
            await asyncio.sleep(0)
            continue
        yielded._asyncio_future_blocking = False
        try:
            await asyncio.wait((yielded,))
        except BaseException as again:  # cancelled again while cleaning up: pass it on
            throw = again


def _advance(running: list[_Step], results: list[Any]) -> list[_Step]:
    """Step each awaitable whose future is done; returns those still blocked, on a future in `blocked_on`."""
    blocked: list[_Step] = []
    for step in running:
        waiting_on = step.blocked_on
        if waiting_on is not None and not waiting_on.done():
            blocked.append(step)  # not yet: stepping it now would only yield the same future again
            continue
        try:
            yielded = step.context.run(step.iterator.send, None)
        except StopIteration as stop:
            if step.index >= 0:
                results[step.index] = stop.value
            continue
        except Exception as error:
            if step.index >= 0:
                results[step.index] = error
            continue
        if yielded is not None and not getattr(yielded, "_asyncio_future_blocking", False):
            step.iterator.close()
            if step.index >= 0:
                results[step.index] = RuntimeError(f"awaitable yielded {yielded!r}, not a future")
            continue
        if yielded is not None:
            yielded._asyncio_future_blocking = False  # what Task.__step does before waiting on it
        step.blocked_on = yielded
        blocked.append(step)
    return blocked


def _any_done(running: list[_Step]) -> bool:
    for step in running:  # noqa: SIM110  # a loop, not any(genexpr): no generator stepped per element
        if step.blocked_on is not None and step.blocked_on.done():
            return True
    return False


async def _wait(running: list[_Step], internal: set[Any]) -> bool:
    """Until any of the futures is done; a bare `yield` (asyncio.sleep(0)) just waits one loop turn.

    Any, not all: one awaitable may wait for another to move on (a lock the other holds, say),
    so waiting for every future before stepping again could wait forever. With batch resolvers
    a level has a handful of awaitables, so watching them all costs a few callbacks. A batch
    future settle's own fetch completes is not watched (the fetch's own future is); one already
    done (completed by a step this round) means: step again now. False when nothing outside
    settle was left to wait for.
    """
    pending = set()
    for step in running:
        future = step.blocked_on
        if future is None:
            await asyncio.sleep(0)
            return True
        if future.done():
            return True
        if future not in internal:
            pending.add(future)
    if not pending:
        await asyncio.sleep(0)
        return False
    if len(pending) == 1:
        await _one(pending.pop())
    else:
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    return True


async def _one(future: Any) -> None:
    """Until `future` is done, awaiting it directly: its step is woken a loop turn sooner than by asyncio.wait.

    Its outcome is its step's business: an error or cancellation of the future itself is not
    raised here; only this task's own cancellation is.
    """
    try:
        await future
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not future.cancelled() or (task is not None and task.cancelling()):
            raise
    except Exception:  # noqa: S110  # the future's own failure: its step sees it when stepped
        pass
