"""Test databases: migrated (and seeded) once per run, then copied for every test.

SQLite by default. Set OMNIGATE_TEST_DATABASE_URL to a PostgreSQL URL (the database named
there is only used to connect; each test gets its own database copied from a template).
In CI (CI=true) an unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.db import create_engine
from core.migrate import migrate

__all__ = ["TEST_PRODUCTS", "TemplateDatabase", "database_url_from_env"]

TEST_PRODUCTS = 60
T = TypeVar("T")


class TemplateDatabase:
    """Builds the template once; `copy()` hands each test a fresh database of its own.

    On PostgreSQL, CREATE DATABASE ... TEMPLATE and DROP DATABASE each wait on the disk (the drop
    on a checkpoint): about half a second a test, in series, which doubled the suite's time. Two
    threads with event loops of their own make the next test's copy while a test runs and drop
    the copies behind it, so the suite waits on neither.
    """

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        self.base_url = base_url
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self._copies = 0
        self.template_url = ""
        self._create_loop: _AdminLoop | None = None  # creates copies
        self._drop_loop: _AdminLoop | None = None  # drops them, beside the creates
        self._next_copy: Future[str] | None = None
        self._drops: list[Future[None]] = []

    @property
    def is_postgres(self) -> bool:
        return bool(self.base_url) and self.base_url.startswith("postgresql")

    async def build(self, seed_fn) -> None:
        if self.is_postgres:
            self.template_url = await self._create_pg_database(f"omnigate_tpl_{self.run_id}")
        else:
            self.template_url = f"sqlite+aiosqlite:///{self.workdir / 'template.db'}"
        engine = create_engine(self.template_url)
        try:
            await migrate(engine)
            await seed_fn(engine)
        finally:
            await engine.dispose()
        if self.is_postgres:
            self._create_loop = _AdminLoop(self.base_url or "")
            self._drop_loop = _AdminLoop(self.base_url or "")

    async def copy(self) -> str:
        if self._create_loop is not None:
            copy = self._next_copy or self._create_copy_behind()
            self._next_copy = self._create_copy_behind()  # the next test's, made while this one runs
            return await asyncio.wrap_future(copy)
        self._copies += 1
        path = self.workdir / f"test_{self._copies}.db"
        shutil.copyfile(self.workdir / "template.db", path)
        return f"sqlite+aiosqlite:///{path}"

    async def drop(self, url: str) -> None:
        if self._drop_loop is not None:
            name = make_url(url).database
            self._drops.append(self._drop_loop.submit(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        for suffix in ("", "-wal", "-shm"):
            Path(url.split(":///", 1)[1] + suffix).unlink(missing_ok=True)

    async def close(self) -> None:
        if self._create_loop is not None and self._drop_loop is not None:
            if self._next_copy is not None:
                await self.drop(await asyncio.wrap_future(self._next_copy))
            for dropped in self._drops:
                await asyncio.wrap_future(dropped)
            self._create_loop.close()
            self._drop_loop.close()
        if self.is_postgres and self.template_url:
            await self._admin(f'DROP DATABASE IF EXISTS "{make_url(self.template_url).database}" WITH (FORCE)')

    def _create_copy_behind(self) -> Future[str]:
        assert self._create_loop is not None
        self._copies += 1
        name = f"omnigate_t_{self.run_id}_{self._copies}"
        template = make_url(self.template_url).database
        url = make_url(self.base_url or "").set(database=name).render_as_string(hide_password=False)
        return self._create_loop.submit(f'CREATE DATABASE "{name}" TEMPLATE "{template}"', result=url)

    async def _create_pg_database(self, name: str) -> str:
        await self._admin(f'CREATE DATABASE "{name}"')
        return make_url(self.base_url or "").set(database=name).render_as_string(hide_password=False)

    async def _admin(self, statement: str) -> None:
        assert self.base_url
        engine = create_async_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()


class _AdminLoop:
    """Runs administrative statements one at a time, in order, on a thread of its own beside the tests."""

    def __init__(self, base_url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-databases", daemon=True)
        self._thread.start()
        self._engine = create_async_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._turn = asyncio.Lock()  # created here, used only on the thread's loop (it binds on first use)

    def submit(self, statement: str, result: T | None = None) -> Future[T]:
        async def run() -> T:
            async with self._turn, self._engine.connect() as conn:
                await conn.execute(text(statement))
            return result  # type: ignore[return-value]

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._engine.dispose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def database_url_from_env() -> str | None:
    return os.environ.get("OMNIGATE_TEST_DATABASE_URL") or None
