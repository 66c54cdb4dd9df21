"""App-wide publish/subscribe of "topic changed" messages, across gateway replicas.

`LocalBroadcaster` delivers within one process. `PostgresBroadcaster` publishes with
`pg_notify` and listens on one dedicated asyncpg connection (LISTEN), so every replica behind
a load balancer hears every change. Messages are hints ("cart X changed"): a subscriber
re-reads the state it cares about, so a slow subscriber's queue coalesces to one pending
message instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import is_sqlite

__all__ = ["Broadcaster", "ForgetOnMessage", "LocalBroadcaster", "PostgresBroadcaster", "create_broadcaster"]

PG_CHANNEL = "omnigate_events"


class Broadcaster(Protocol):
    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    async def publish(self, topic: str, message: str = "") -> None: ...
    def subscribe(self, topic: str) -> Any: ...  # async context manager yielding an async iterator of messages


class ForgetOnMessage:
    """Calls `forget` whenever `topic` is heard: how a replica's short-lived memory (who is erased,
    who is still signed in) hears that another replica changed the answer. The listener starts on
    the first `listen()` with a running loop, and again if it ever stopped."""

    def __init__(self, broadcaster: Broadcaster, topic: str, forget: Callable[[], None]) -> None:
        self._broadcaster = broadcaster
        self._topic = topic
        self._forget = forget
        self._task: asyncio.Task[None] | None = None

    def listen(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to listen with
                self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async with self._broadcaster.subscribe(self._topic) as messages:
            async for _ in messages:  # a hint (possibly coalesced): forget everything
                self._forget()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class LocalBroadcaster:
    """In-process delivery: fine for one gateway process (and SQLite, which is one host anyway)."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[str]]] = {}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._queues.clear()

    async def publish(self, topic: str, message: str = "") -> None:
        self._deliver(topic, message)

    def _deliver(self, topic: str, message: str) -> None:
        for queue in list(self._queues.get(topic, ())):
            if queue.full():  # one pending hint is enough: the subscriber re-reads the latest state
                continue
            queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[str]]:
        await self.start()
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._queues.setdefault(topic, set()).add(queue)

        async def messages() -> AsyncIterator[str]:
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            subscribers = self._queues.get(topic)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._queues[topic]


class PostgresBroadcaster(LocalBroadcaster):
    """LISTEN/NOTIFY: publish through the engine, hear every replica's publishes on one connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine
        self._connection: Any = None
        self._starting = asyncio.Lock()  # only guards connecting once per process, not data
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._closed = False
        if self._connection is not None:
            return
        async with self._starting:
            if self._connection is not None:
                return
            import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

            dsn = make_url(self._engine.url).set(drivername="postgresql").render_as_string(hide_password=False)
            connection = await asyncpg.connect(dsn)
            await connection.add_listener(PG_CHANNEL, self._on_notify)
            connection.add_termination_listener(self._on_lost)
            self._connection = connection

    def _on_lost(self, connection: Any) -> None:
        if connection is not self._connection:
            return  # closed by aclose, or an older connection
        self._connection = None
        if not self._closed and self._reconnecting is None:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Listen again for the subscribers already waiting, then have each re-read its state:
        hints sent while no one listened are gone (why messages are hints, not deltas)."""
        import asyncpg

        delay = 0.1
        try:
            while not self._closed:
                try:
                    await self.start()
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                for topic in list(self._queues):
                    self._deliver(topic, "")
                return
        finally:
            self._reconnecting = None

    async def aclose(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.remove_listener(PG_CHANNEL, self._on_notify)
            finally:
                await connection.close()
        await super().aclose()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, message = payload.partition("\n")
        self._deliver(topic, message)

    async def publish(self, topic: str, message: str = "") -> None:
        async with self._engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": PG_CHANNEL, "payload": f"{topic}\n{message}"}
            )
            await conn.commit()


def create_broadcaster(engine: AsyncEngine) -> LocalBroadcaster:
    """LISTEN/NOTIFY on PostgreSQL (several replicas), in-process on SQLite (one host)."""
    return LocalBroadcaster() if is_sqlite(str(engine.url)) else PostgresBroadcaster(engine)
