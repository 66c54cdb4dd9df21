"""One hop to aiosqlite's thread per statement instead of four.

aiosqlite runs every sqlite3 call in its own thread, and SQLAlchemy's adapter makes one call per
DBAPI step: open a cursor, execute, fetch the rows, close the cursor. Each hop is a thread wake-up
and an event-loop wake-up; a cart change of five statements made twenty of them, which cost more
CPU than SQLite took to run the statements. `OneHopCursor` runs those four steps in one call.

What SQLAlchemy sees is unchanged: the rows are buffered as its adapter already buffered them
(every row fetched at execute), and description, rowcount and lastrowid are read at execute,
in the worker thread, as the adapter's properties read them. Errors are sqlite3's, raised from
the same `execute`. Server-side cursors (`stream()`) keep SQLAlchemy's own adapter. The cursor
reaches aiosqlite's sqlite3 connection and queue as SQLAlchemy's aiosqlite dialect itself does.
"""

from __future__ import annotations

import collections
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util.concurrency import await_

__all__ = ["OneHopConnection", "rollback_if_open", "use_one_hop_cursors"]


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_description", "_lastrowid", "_rowcount", "_size")

    def __init__(self, adapt_connection: Any) -> None:  # no driver cursor: opened per statement, in the thread
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized: Any = {}
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None
        self._size = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._size

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._size = value

    async def _async_soft_close(self) -> None:
        return None  # nothing is open between statements

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, many=False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, many=True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver = self._connection

        def in_thread() -> tuple[Any, Any, int, Any]:
            cursor = driver._conn.cursor()
            try:
                if many:
                    cursor.executemany(operation, parameters)
                elif parameters is None:
                    cursor.execute(operation)
                else:
                    cursor.execute(operation, parameters)
                description = cursor.description
                rows = cursor.fetchall() if description else ()
                return description, rows, cursor.rowcount, cursor.lastrowid
            finally:
                cursor.close()

        async with self._adapt_connection._execute_mutex:
            self._description, rows, self._rowcount, self._lastrowid = await driver._execute(in_thread)
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor


def use_one_hop_cursors(dbapi_connection: Any, _record: Any) -> None:
    """A pool `connect` listener: this engine's aiosqlite connections hand out `OneHopCursor`s."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneHopConnection


def rollback_if_open(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's rollback-on-return (the engine is made with `pool_reset_on_return=None`), skipped
    when no transaction is open: after a unit of work's COMMIT it was one more hop for nothing.

    sqlite3's `in_transaction` reads SQLite's autocommit flag; the connection is idle here."""
    if not state.asyncio_safe or state.transaction_was_reset:
        return  # as SQLAlchemy's own reset: nothing to do, or not from here
    driver = getattr(dbapi_connection, "_connection", None)
    sqlite_connection = getattr(driver, "_connection", None)
    if sqlite_connection is None or sqlite_connection.in_transaction:
        dbapi_connection.rollback()
