"""SQLAlchemy basics every bounded context shares: the declarative base, engines, UTC times."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import DateTime, MetaData, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Connectable",
    "ReadScope",
    "UtcDateTime",
    "Within",
    "create_engine",
    "dialect_insert",
    "is_database_unavailable",
    "is_sqlite",
    "json_loads",
    "on_every_statement",
    "ping",
    "reader",
    "session_factory",
    "sqlite_write_queue",
    "statement_engines",
    "writer",
]

logger = logging.getLogger("omnigate.db")

IDLE_BEFORE_PING_SECONDS = 30.0

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """One metadata for all contexts, so Alembic sees every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: Omnigate stores UTC, timezone-aware times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# SQLSTATE classes that mean "the server is not there for us now", not "the statement is wrong":
# 08 connection exception, 57P01-57P03 shutdown/crash/starting up, 53300 too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# What SQLite says when its file cannot be opened or read (a missing folder, a lost disk).
_SQLITE_UNAVAILABLE = ("unable to open database file", "disk i/o error")


def is_database_unavailable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) means the database cannot be reached right now.

    Such a failure is nobody's mistake and passes by itself: callers answer "retry later"
    instead of an internal error. Anything else (a constraint, a bad statement) is not this.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unavailable(current):
            return True
        original = getattr(current, "orig", None)
        if isinstance(original, BaseException) and _unavailable(original):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unavailable(error: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(error, OSError | PoolTimeout):  # refused, reset, unreachable, timed out; pool exhausted
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    name = type(error).__name__
    if name in ("ConnectionDoesNotExistError", "CannotConnectNowError", "ConnectionFailureError"):
        return True  # asyncpg's, when not wrapped
    if name == "InterfaceError" and "connection is closed" in str(error):
        return True
    return name == "OperationalError" and str(error).strip().lower() in _SQLITE_UNAVAILABLE


async def ping(engine: AsyncEngine, timeout: float) -> None:
    """`SELECT 1` within `timeout` seconds, or raise (TimeoutError, or the driver's error)."""
    from sqlalchemy import text

    async with asyncio.timeout(timeout), engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (the pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # SQLite takes its write lock lazily, and a reader that later writes can fail with
    # SQLITE_BUSY at once; writers ask for BEGIN IMMEDIATE (see `writer`) and queue instead.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate") else "BEGIN")


def dialect_insert(dialect: Dialect, table: Any) -> Any:
    """An INSERT with `on_conflict_do_nothing/do_update` for `dialect` (PostgreSQL or SQLite)."""
    return (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The engine to bind units of work that write: on SQLite they take the write lock up front.

    Made once per engine and kept on it (a new option engine per unit of work cost a logger and
    events each time; kept on the engine itself, it goes when the engine goes)."""
    sync_engine: Any = engine.sync_engine
    found: AsyncEngine | None = getattr(sync_engine, "_omnigate_writer", None)
    if found is None:
        found = engine.execution_options(sqlite_immediate=True)
        sync_engine._omnigate_writer = found
    return found


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine a request's reads run on (`ReadScope`): `engine`'s own pool and dialect, none
    of its statement listeners.

    One listener on an engine (the response cache watching for writes, gateway/caching.py) makes
    SQLAlchemy dispatch events around every statement on every connection of it: on PostgreSQL
    3.6% of a storefront request's instructions (bench/instructions.py; SQLite dispatches them
    for its BEGIN anyway), for nothing, as a read-only transaction writes nothing to watch.
    What must see reads too (SQL spans, a test counting statements) listens on both engines
    (`statement_engines`). Made once per engine and kept on it, as `writer` is.
    """
    sync_engine: Any = engine.sync_engine
    found: AsyncEngine | None = getattr(sync_engine, "_omnigate_reader", None)
    if found is not None:
        if found.sync_engine.pool is not sync_engine.pool:  # disposed: a new pool, and still the same listeners
            found.sync_engine.pool = sync_engine.pool
        return found
    plain = Engine(
        sync_engine.pool,
        sync_engine.dialect,
        sync_engine.url,
        echo=sync_engine.echo,
        hide_parameters=sync_engine.hide_parameters,
    )
    if sync_engine.dialect.name == "sqlite":
        event.listen(plain, "begin", _sqlite_begin)  # a request's reads see one snapshot
    found = sync_engine._omnigate_reader = AsyncEngine(plain)
    return found


def statement_engines(engine: AsyncEngine) -> tuple[Engine, Engine]:
    """The sync engines whose statement events see every statement run on `engine`'s pool: its
    own (a `writer` joins its events) and its `reader`'s."""
    return engine.sync_engine, reader(engine).sync_engine


@contextmanager
def on_every_statement(
    engine: AsyncEngine, listener: Callable[..., None], identifier: str = "before_cursor_execute"
) -> Iterator[None]:
    """`listener` on every statement of `engine`'s pool (reads and writes) while the block runs."""
    engines = statement_engines(engine)
    for sync_engine in engines:
        event.listen(sync_engine, identifier, listener)
    try:
        yield
    finally:
        for sync_engine in engines:
            event.remove(sync_engine, identifier, listener)


def json_loads(text: str | bytes) -> Any:
    """JSON read from the database: orjson (3-5x the standard library's speed on a cart's lines,
    read on every add: 25 -> 8 us for 50 lines), and the standard library for what orjson refuses
    (NaN, Infinity). orjson reads an integer past 64 bits as a float: no column here holds one."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine tuned per backend: WAL, foreign keys and one-trip cursors (core/sqlite_driver.py)
    on SQLite; a sized pool on both.

    (SQLite's default pool kept 5 connections and closed overflow ones at check-in, so under
    load each request reopened a connection: a thread and the PRAGMAs.)
    """
    options: dict[str, Any] = dict(echo=echo, pool_size=pool_size, max_overflow=pool_size, json_deserializer=json_loads)
    if is_sqlite(url):
        driver: dict[str, Any] = {}
        if url.startswith("sqlite+aiosqlite"):
            from core.sqlite_driver import one_trip_dbapi, unsupported

            missing = unsupported()
            if missing is None:
                driver["module"] = one_trip_dbapi()  # one trip to aiosqlite's thread per statement
            else:
                logger.warning("SQLite: SQLAlchemy's own aiosqlite adapter (this version lacks %s)", missing)
        engine = create_async_engine(url, **options, **driver)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "checkin", _note_checkin)
    dialect = engine.dialect

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        _ping_if_idle(dialect, dbapi_connection, record)

    event.listen(engine.sync_engine, "checkout", ping_if_idle)
    return engine


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["omnigate_idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any) -> None:
    """Ping a connection only when it sat idle in the pool: a hot pool pays no round trip per checkout.

    (`pool_pre_ping` pings on every checkout: one round trip per request for nothing. A server
    restart or a firewall dropping idle connections is caught here; a connection that dies while
    hot fails its statement, and SQLAlchemy invalidates it and the pool replaces it.)
    """
    idle_since = record.info.get("omnigate_idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING_SECONDS:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as error:
        raise exc.DisconnectionError("idle connection is gone") from error


class Connectable(Protocol):
    """What read functions need: an engine, or a request's `ReadScope`."""

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class Within:
    """A unit of work's connection as a `Connectable`: another context's reads join its transaction."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return _borrowed(self._conn)


@asynccontextmanager
async def _borrowed(conn: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    yield conn  # not closed here: the unit of work ends it


class ReadScope:
    """All the reads of one request on one pooled connection, in one read-only transaction.

    Services call `connect()` as they would on the engine; the first call checks a connection
    out of the engine's pool (through its `reader`) and begins (BEGIN READ ONLY on PostgreSQL),
    later calls reuse it, one statement at a time (a connection runs one at once anyway), and
    `aclose()` ends the transaction and returns the connection. Instead of a checkout, a BEGIN
    and a ROLLBACK per loader batch (25 statements for the storefront's 5 SELECTs on
    PostgreSQL), a request costs 7.
    Only for operations that do not write: a reader's snapshot must not hide its own writes.
    """

    __slots__ = ("_closed", "_connection", "_lock", "engine")

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = reader(engine)
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:  # a straggler (a loader batch outliving a cancelled request): its own connection
            async with self.engine.connect() as own:
                yield own
            return
        async with self._lock:
            if self._connection is None:
                connection = await self.engine.connect()
                if self.engine.dialect.name == "postgresql":
                    connection = await connection.execution_options(postgresql_readonly=True)
                self._connection = connection
            yield self._connection

    async def aclose(self) -> None:
        """After the statement in flight, if any: stragglers then use connections of their own."""
        self._closed = True
        async with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work that write (one per mutation)."""
    return async_sessionmaker(writer(engine), expire_on_commit=False)


_write_queues: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def sqlite_write_queue(engine: AsyncEngine) -> AsyncIterator[None]:
    """Queue this process's SQLite writers in turn instead of letting them poll the write lock.

    Not a correctness mechanism: BEGIN IMMEDIATE still serializes writers (across processes too).
    SQLite's busy handler retries a locked database with sleeps growing to 100 ms, which turns
    a few contended writers into a long latency tail; waiting in line here costs no sleeps.
    Does nothing on PostgreSQL, whose row locks queue waiters themselves.
    """
    if engine.dialect.name != "sqlite":
        yield
        return
    pool = engine.sync_engine.pool
    queue = _write_queues.get(pool)
    if queue is None:
        queue = _write_queues[pool] = asyncio.Lock()
    async with queue:
        yield
