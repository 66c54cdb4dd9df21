"""SQLite statements take one hop to aiosqlite's thread, and SQLAlchemy sees what it saw before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from core.db import create_engine, writer

metadata = MetaData()
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


async def test_rows_rowcounts_returning_and_errors_are_as_before_with_one_hop_per_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/one-hop.db")
    hops: list[Any] = []
    original = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await original(self, fn, *args, **kwargs)

    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(metadata.create_all)
        monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
        async with writer(engine).begin() as conn:
            hops.clear()
            await conn.execute(insert(items), [{"name": "a"}, {"name": "b"}, {"name": "c"}])  # executemany
            assert len(hops) == 1
            returned = (await conn.execute(insert(items).values(name="d").returning(items.c.id))).scalar_one()
            assert returned == 4
            changed = await conn.execute(update(items).where(items.c.id > 2).values(name=items.c.name + "!"))
            assert changed.rowcount == 2
            rows = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
            assert rows == ["a", "b", "c!", "d!"]
            assert (await conn.execute(select(items).where(items.c.id == 99))).all() == []
            assert len(hops) == 5  # one per statement: no cursor opened, fetched or closed apart
            streamed = [row.name async for row in await conn.stream(select(items).order_by(items.c.id))]
            assert streamed == ["a", "b", "c!", "d!"]  # server-side cursors keep SQLAlchemy's own adapter
        with pytest.raises(IntegrityError):
            async with writer(engine).begin() as conn:
                await conn.execute(insert(items).values(name="a"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one() == 4
    finally:
        await engine.dispose()


async def test_a_connection_returned_inside_a_transaction_is_still_rolled_back(tmp_path: Path) -> None:
    """The pool skips its rollback hop only when SQLite says no transaction is open."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/reset.db", pool_size=1)

    def behind_sqlalchemys_back(sync_conn: Any) -> None:
        cursor = sync_conn.connection.dbapi_connection.cursor()
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO items (name) VALUES ('uncommitted')")
        cursor.close()

    try:
        async with writer(engine).begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(items).values(name="committed"))
        async with engine.connect() as conn:
            await conn.commit()  # SQLAlchemy holds no transaction now; the driver will
            await conn.run_sync(behind_sqlalchemys_back)
        async with writer(engine).begin() as conn:  # the pool's one connection, rolled back on return
            assert (await conn.execute(select(items.c.name))).scalars().all() == ["committed"]
    finally:
        await engine.dispose()


async def test_a_sqlite_or_aiosqlite_without_what_the_one_trip_cursor_needs_keeps_sqlalchemys_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The one-trip cursor reads private parts of both libraries: if an upgrade moved one, the
    engine says so and runs SQLAlchemy's own adapter (slower, still correct) instead of failing."""
    from core import sqlite_driver

    assert sqlite_driver.unsupported() is None  # the versions CI installs
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/supported.db")
    assert isinstance(engine.dialect.dbapi, sqlite_driver._OneTripDbapi)
    await engine.dispose()

    sqlite_driver.unsupported.cache_clear()
    monkeypatch.delattr(aiosqlite.core.Connection, "_execute")
    try:
        with caplog.at_level("WARNING", logger="omnigate.db"):
            engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/fallback.db")
        assert "aiosqlite.Connection._execute" in caplog.text
        assert not isinstance(engine.dialect.dbapi, sqlite_driver._OneTripDbapi)
    finally:
        sqlite_driver.unsupported.cache_clear()
