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
    "is_sqlite",
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
