"""SQLAlchemy basics every bounded context shares: the declarative base, engines, UTC times."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "UtcDateTime",
    "create_engine",
    "dialect_insert",
    "is_database_unavailable",
    "is_sqlite",
    "ping",
    "session_factory",
    "sqlite_write_queue",
    "writer",
]

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
    """The engine to bind units of work that write: on SQLite they take the write lock up front."""
    return engine.execution_options(sqlite_immediate=True)


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine tuned per backend: WAL and foreign keys on SQLite; a sized pool on both.

    (SQLite's default pool kept 5 connections and closed overflow ones at check-in, so under
    load each request reopened a connection: a thread and the PRAGMAs.)
    """
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


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
