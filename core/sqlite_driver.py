"""SQLAlchemy's aiosqlite adapter with one trip to aiosqlite's thread per statement instead of four.

aiosqlite runs every call on a thread of its own; SQLAlchemy's adapter makes four such calls per
statement (open a cursor, execute, fetch all, close), and each round trip between the event
loop and that thread (a queue, a wake-up, `call_soon_threadsafe`, the GIL handed over twice)
costs far more CPU than the statement: the storefront's five SELECTs spent ~7 ms in them.
Here the cursor does all four in one call on that thread, and hands SQLAlchemy the rows, the
description, the row count and the last row id, as the adapter's buffered cursor did; a plain
(deferred) BEGIN, which does nothing in SQLite until the next statement, goes with that statement.
Everything else (connections, transactions, errors, server-side cursors) is SQLAlchemy's own.

It leans on private parts of SQLAlchemy's adapter and of aiosqlite (pinned to the minor versions
CI tests). `unsupported()` checks they are there; where one is missing, `core.db.create_engine`
says so in the log and keeps SQLAlchemy's own adapter, slower but correct.
"""

from __future__ import annotations

import collections
import functools
import inspect
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

__all__ = ["one_trip_dbapi", "unsupported"]


def _run(
    driver: Any, begin: bool, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any] | None, int, int | None]:
    """On aiosqlite's thread: BEGIN if one is pending, the statement, its rows (if any) and counters."""
    connection = driver._conn
    if begin:
        connection.execute("BEGIN")
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose execute is one call on aiosqlite's thread (no driver cursor kept)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")
    _adapt_connection: _OneTripConnection

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # none held between calls
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]  # None before an insert, as sqlite3's

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # nothing open on the driver's side

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if operation == "BEGIN" and not parameters:
            # A deferred BEGIN takes no lock and no snapshot until the first statement: it goes
            # with that statement's trip (a read-only request makes one trip fewer).
            self._adapt_connection._begin_pending = True
            self._description, self._rowcount, self._lastrowid = None, -1, None
            return None
        try:
            return await_(self._call(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._call(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _call(self, operation: str, parameters: Any, *, many: bool) -> None:
        adapted = self._adapt_connection
        async with adapted._execute_mutex:
            begin, adapted._begin_pending = adapted._begin_pending, False
            driver = self._connection
            found = await driver._execute(_run, driver, begin, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = found
        self._rows = collections.deque(rows) if rows else collections.deque()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin_pending",)
    _cursor_cls = OneTripCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self._begin_pending = False  # a BEGIN sent with the next statement

    def rollback(self) -> None:
        if self._begin_pending:  # no statement since BEGIN: SQLite has begun nothing to roll back
            self._begin_pending = False
            return
        driver = getattr(self._connection, "_connection", None)  # sqlite3's, idle between statements
        if driver is not None and not driver.in_transaction:
            return  # nothing open (the pool's reset after a COMMIT): no trip to roll nothing back
        super().rollback()

    def commit(self) -> None:
        if self._begin_pending:
            self._begin_pending = False
            return
        super().commit()


class _OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneTripConnection(self, adapted._connection)


def _slots(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())}


@functools.cache
def unsupported() -> str | None:
    """What this adapter needs and the installed SQLAlchemy or aiosqlite lacks; None if nothing."""
    needs = {
        "aiosqlite.Connection._execute": inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)),
        "aiosqlite.Connection._conn": isinstance(getattr(aiosqlite.Connection, "_conn", None), property),
        "the adapter's cursor slots": {"_adapt_connection", "_connection", "_cursor", "_rows", "_soft_closed_memoized"}
        <= _slots(AsyncAdapt_aiosqlite_cursor),
        "the adapter's connection slots": {"_connection", "_execute_mutex"} <= _slots(AsyncAdapt_aiosqlite_connection),
        "the adapter's _handle_exception": callable(
            getattr(AsyncAdapt_aiosqlite_connection, "_handle_exception", None)
        ),
        "the adapter's (dbapi, connection) constructor": list(
            inspect.signature(AsyncAdapt_aiosqlite_connection.__init__).parameters
        )[1:3]
        == ["dbapi", "connection"],
    }
    missing = [name for name, there in needs.items() if not there]
    return ", ".join(missing) or None


def one_trip_dbapi() -> Any:
    """The `module=` for `create_async_engine("sqlite+aiosqlite://...")`."""
    return _OneTripDbapi(aiosqlite, sqlite3)
