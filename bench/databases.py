"""A database of a benchmark's own, made, migrated, seeded and dropped by the benchmark."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from core.db import create_engine
from core.migrate import migrate
from core.settings import Settings
from gateway.seed import seed

__all__ = ["order_row", "scratch_database", "seeded"]

Drop = Callable[[], Awaitable[None]]


async def scratch_database(url: str | None, workdir: Path, name: str) -> tuple[str, Drop | None]:
    """A fresh database's URL, and how to drop it afterwards (None: a SQLite file in `workdir`).

    On PostgreSQL a new database `omnigate_bench_<name>_<n>` beside the one `url` names, so a
    benchmark never touches the data of the database it was pointed at.
    """
    if url is None or not url.startswith("postgresql"):
        return f"sqlite+aiosqlite:///{workdir / f'{name}.db'}", None
    database = f"omnigate_bench_{name}_{random.randrange(10**8)}"  # noqa: S311 - a name, not a secret
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{database}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()

    return make_url(url).set(database=database).render_as_string(hide_password=False), drop


async def seeded(url: str, workdir: Path, products: int, **settings: Any) -> tuple[AsyncEngine, Settings]:
    """The database at `url` migrated and seeded with the demo data and `products` products, and
    settings for an app on it (keys kept in `workdir`; `settings` adds or overrides fields)."""
    engine = create_engine(url)
    await migrate(engine)
    chosen = Settings(
        database_url=url,
        kek_file=str(workdir / "kek.json"),
        jwt_secret="bench-secret-0123456789-0123456789-0123",
        **settings,
    )
    await seed(engine, products=products, settings=chosen)
    return engine, chosen


def order_row(n: int, total: Decimal, placed: datetime, **columns: Any) -> dict[str, Any]:
    """The columns of a placed, paid order `n` for a bulk insert into `orders`: shipped from the web
    channel, `total` gross with 23% VAT in it, no discount; `columns` adds or overrides any."""
    return {
        "owner_key": f"bench:{n}",
        "idempotency_key": f"bench-{n}",
        "cart_id": f"bench-cart-{n}",
        "cart_version": 1,
        "status": "SHIPPED",
        "channel_code": "web",
        "fulfillment_method": "SHIP_TO_ADDRESS",
        "currency": "PLN",
        "subtotal": total,
        "discount_total": Decimal(0),
        "total": total,
        "tax_total": (total * Decimal("0.23") / Decimal("1.23")).quantize(Decimal("0.01")),
        "payment_method": "card",
        "payment_status": "CAPTURED",
        "amount_refunded": Decimal(0),
        "placed_at": placed,
        "updated_at": placed,
        **columns,
    }
