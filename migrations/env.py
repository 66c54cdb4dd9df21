"""Alembic environment: runs on a connection handed in by `core.migrate`, or on its own."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

# Every bounded context that owns tables, so autogenerate sees all of them (one line each).
import commerce.cart.models
import commerce.catalog.models
import commerce.customers.models
import commerce.customers.session_models
import commerce.events.models
import commerce.inventory.models
import commerce.loyalty.models
import commerce.notifications.models
import commerce.orders.models
import commerce.payments.models
import commerce.pricing.models
import commerce.pricing.promotion_models
import commerce.pricing.tax_models
import commerce.recommendations.models  # noqa: F401
import vault.audit_models
import vault.models
import vault.requests.models  # noqa: F401
from core.db import Base, create_engine

target_metadata = Base.metadata
config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_standalone(os.environ.get("OMNIGATE_DATABASE_URL", "sqlite+aiosqlite:///./var/omnigate.db")))
