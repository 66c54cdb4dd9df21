"""Test databases: migrated (and seeded) once per run, then copied for every test.

SQLite by default. Set OMNIGATE_TEST_DATABASE_URL to a PostgreSQL URL (the database named
there is only used to connect; each test gets its own database copied from a template).
In CI (CI=true) an unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from core.db import create_engine
from core.migrate import migrate

__all__ = ["TEST_PRODUCTS", "TemplateDatabase", "database_url_from_env"]

TEST_PRODUCTS = 60


class TemplateDatabase:
    """Builds the template once; `copy()` hands each test a fresh database of its own."""

    def __init__(self, base_url: str | None, workdir: Path) -> None:
        self.base_url = base_url
        self.workdir = workdir
        self.run_id = uuid.uuid4().hex[:8]
        self._copies = 0
        self.template_url = ""

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

    async def copy(self) -> str:
        self._copies += 1
        if self.is_postgres:
            return await self._create_pg_database(
                f"omnigate_t_{self.run_id}_{self._copies}", template=make_url(self.template_url).database
            )
        path = self.workdir / f"test_{self._copies}.db"
        shutil.copyfile(self.workdir / "template.db", path)
        return f"sqlite+aiosqlite:///{path}"

    async def drop(self, url: str) -> None:
        if self.is_postgres:
            await self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(url.split(":///", 1)[1] + suffix).unlink(missing_ok=True)

    async def close(self) -> None:
        if self.is_postgres and self.template_url:
            await self.drop(self.template_url)

    async def _create_pg_database(self, name: str, template: str | None = None) -> str:
        suffix = f' TEMPLATE "{template}"' if template else ""
        await self._admin(f'CREATE DATABASE "{name}"{suffix}')
        return make_url(self.base_url or "").set(database=name).render_as_string(hide_password=False)

    async def _admin(self, statement: str) -> None:
        assert self.base_url
        engine = create_async_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()


def database_url_from_env() -> str | None:
    return os.environ.get("OMNIGATE_TEST_DATABASE_URL") or None
