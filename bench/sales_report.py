"""The sales report over a year of orders: 100,000 orders in four channels, on PostgreSQL or SQLite.

    .venv/bin/python bench/sales_report.py [--orders 100000] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Creates a database of its own (PostgreSQL: a new database beside the one named; SQLite: a temporary
file), migrates and seeds it, bulk-inserts the orders (ANALYZE after, as production would have
statistics), then times `salesReport` for 365 days by day, week and month through GraphQL in-process,
and, as the baseline in the same run, one `SELECT count(*)` over the same orders. Prints p50 and
max per query; the bar is 300 ms on PostgreSQL. Drops what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import order_row, scratch_database, seeded  # noqa: E402
from commerce.orders.models import OrderLineRow, OrderRow  # noqa: E402
from core.clock import FrozenClock  # noqa: E402
from gateway.app import create_app  # noqa: E402
from policies.principal import Principal, Role  # noqa: E402

CHANNELS = ("web", "mobile", "store", "call-center")
METHODS = ("SHIP_TO_ADDRESS", "CLICK_AND_COLLECT", "RESERVE_AND_COLLECT", "IN_STORE")
REPORT = """query($from: DateTime!, $to: DateTime!, $period: ReportPeriod) {
  salesReport(from: $from, to: $to, period: $period) {
    rows { channel orders revenue { amount } } totals { orders } } }"""
END = datetime(2026, 11, 1, tzinfo=UTC)


async def _fill(engine: Any, count: int) -> None:
    rng = random.Random(7)  # noqa: S311 - repeatable demo data
    batch_orders: list[dict[str, Any]] = []
    batch_lines: list[dict[str, Any]] = []
    for n in range(1, count + 1):
        placed = END - timedelta(seconds=rng.randrange(365 * 86400))
        method = rng.choice(METHODS)
        price = Decimal(rng.randrange(1_000, 50_000)) / 100
        quantity = rng.randint(1, 3)
        total = price * quantity
        batch_orders.append(
            order_row(
                n,
                total,
                placed,
                id=n,
                status=rng.choice(("PLACED", "COMPLETED", "COMPLETED", "SHIPPED", "CANCELLED", "PARTIALLY_RETURNED")),
                channel_code=rng.choice(CHANNELS),
                fulfillment_method=method,
                pickup_location_id=None if method == "SHIP_TO_ADDRESS" else rng.choice((2, 3, 4)),
                items_count=quantity,
            )
        )
        batch_lines.append(
            {
                "order_id": n,
                "variant_id": 1,
                "location_id": 1,
                "sku": "SKU",
                "name": "Item",
                "quantity": quantity,
                "unit_price": price,
                "subtotal": total,
                "discount": Decimal(0),
                "total": total,
                "tax_rate": Decimal("0.23"),
                "tax_amount": Decimal(0),
            }
        )
        if len(batch_orders) == 5_000 or n == count:
            async with engine.begin() as conn:
                await conn.execute(insert(OrderRow), batch_orders)
                await conn.execute(insert(OrderLineRow), batch_lines)
            batch_orders, batch_lines = [], []
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


def _timed(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples):7.1f} ms   max {max(samples):7.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database (to EXPLAIN it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, drop = await scratch_database(args.database_url, workdir, "sales")
        try:
            engine, settings = await seeded(url, workdir, products=50)
            started = time.perf_counter()
            await _fill(engine, args.orders)
            print(
                f"{make_url(url).get_backend_name()}: {args.orders:,} orders inserted"
                f" in {time.perf_counter() - started:.1f} s"
            )
            clock = FrozenClock(END)
            app = create_app(settings, clock)
            runtime = app.state.runtime
            token = runtime.services.tokens.issue(Principal(Role.ADMIN, "bench"), timedelta(hours=1)).token
            headers = {"Authorization": f"Bearer {token}"}
            variables = {"from": (END - timedelta(days=365)).isoformat(), "to": END.isoformat()}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
                baseline: list[float] = []
                async with engine.connect() as conn:
                    for _ in range(args.rounds):
                        t = time.perf_counter()
                        await conn.execute(
                            select(func.count())
                            .select_from(OrderRow)
                            .where(OrderRow.placed_at >= END - timedelta(days=365))
                        )
                        baseline.append((time.perf_counter() - t) * 1000)
                print(f"  baseline count(*) of the year's orders    {_timed(baseline)}")
                for period in ("DAY", "WEEK", "MONTH"):
                    samples = []
                    for _ in range(args.rounds):
                        t = time.perf_counter()
                        response = await client.post(
                            "/graphql",
                            json={"query": REPORT, "variables": {**variables, "period": period}},
                            headers=headers,
                        )
                        samples.append((time.perf_counter() - t) * 1000)
                        body = response.json()
                        if body.get("errors"):
                            raise SystemExit(f"salesReport failed: {body['errors']}")
                    rows = body["data"]["salesReport"]["rows"]
                    counted = sum(r["orders"] for r in body["data"]["salesReport"]["totals"])
                    print(
                        f"  salesReport 365 days by {period:<5} ({len(rows):4} rows, {counted:,} orders)"
                        f" {_timed(samples)}"
                    )
            await runtime.aclose()
            await engine.dispose()
        finally:
            if drop is not None and not args.keep:
                await drop()
            elif drop is not None:
                print(f"kept {make_url(url).database}")


if __name__ == "__main__":
    asyncio.run(main())
