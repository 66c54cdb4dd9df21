"""Run Alembic's migrations on an async engine: the only way tables are created."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["alembic_config", "migrate"]

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "heads") -> None:
    """Upgrade the database behind `engine` to `revision` (all heads by default)."""
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
        await connection.commit()
