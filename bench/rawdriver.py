"""The true limit: the storefront query's five SELECTs through the raw driver, no SQLAlchemy.

The same statements as bench/handwritten.py (and the gateway's loaders), written as SQL and
sent with sqlite3 or asyncpg on one connection per request, answered with the same JSON.
What the hand-written endpoint costs on top of this is the price of the SQL layer.

Run: python bench/rawdriver.py --port 18002 (OMNIGATE_DATABASE_URL names the database).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commerce.catalog.listing import ProductSort
from core.ids import to_global_id
from core.settings import Settings
from gateway.process import tune_gc
from gateway.serving import bind, run, serving_line, start
from schema.listing import listing_cursor

__all__ = ["create_rawdriver_app"]

CURRENCY = "PLN"
CENT = Decimal("0.01")

PAGE = "SELECT id, slug, name, description, category_id FROM products WHERE published = {true} ORDER BY id LIMIT {p1}"
CATEGORIES = "SELECT id, slug, name FROM categories WHERE id IN ({ids})"
VARIANTS = (
    "SELECT id, product_id, sku, name FROM product_variants WHERE product_id IN ({ids}) AND published = {true}"
    " ORDER BY product_id, id"
)
PRICES = "SELECT variant_id, amount, compare_at_amount FROM prices WHERE variant_id IN ({ids}) AND currency = {p1}"
STOCK = (
    "SELECT variant_id, location_id, on_hand - reserved FROM stock_levels WHERE variant_id IN ({ids})"
    " ORDER BY variant_id, location_id"
)

# (sql, parameters) -> rows
Fetch = Callable[[str, Sequence[Any]], Any]


async def storefront_page(fetch: Fetch, placeholder: Callable[[int], str], true: str, first: int) -> dict[str, Any]:
    def sql(template: str, ids: Sequence[int] = (), extra: int = 0) -> str:
        marks = ", ".join(placeholder(i + 1) for i in range(len(ids)))
        return template.format(ids=marks, true=true, p1=placeholder(len(ids) + 1) if extra else "")

    products = list(await fetch(sql(PAGE, (), 1), [first + 1]))
    has_next, products = len(products) > first, products[:first]
    product_ids = [p[0] for p in products]
    category_ids = sorted({p[4] for p in products if p[4] is not None})
    categories = {r[0]: r for r in await fetch(sql(CATEGORIES, category_ids), category_ids)} if category_ids else {}
    variants: dict[int, list[Any]] = {pid: [] for pid in product_ids}
    for row in await fetch(sql(VARIANTS, product_ids), product_ids):
        variants[row[1]].append(row)
    variant_ids = [v[0] for pid in product_ids for v in variants[pid]]
    prices = {r[0]: r[1] for r in await fetch(sql(PRICES, variant_ids, 1), [*variant_ids, CURRENCY])}
    stock: dict[int, int] = {}
    for row in await fetch(sql(STOCK, variant_ids), variant_ids):
        stock[row[0]] = stock.get(row[0], 0) + row[2]

    def category(category_id: int | None) -> dict[str, str] | None:
        found = categories.get(category_id) if category_id is not None else None
        return {"slug": found[1], "name": found[2]} if found else None

    edges = [
        {
            "cursor": listing_cursor(ProductSort(), (None, p[0])),  # the listing's cursor, default order
            "node": {
                "id": to_global_id("Product", p[0]),
                "slug": p[1],
                "name": p[2],
                "category": category(p[4]),
                "variants": [
                    {
                        "id": to_global_id("ProductVariant", v[0]),
                        "sku": v[2],
                        "name": v[3],
                        "price": {"amount": str(Decimal(str(prices[v[0]])).quantize(CENT)), "currency": CURRENCY},
                        "quantityAvailable": stock.get(v[0], 0),
                    }
                    for v in variants[p[0]]
                ],
            },
        }
        for p in products
    ]
    page_info = {"hasNextPage": has_next, "endCursor": edges[-1]["cursor"] if edges else None}
    return {"products": {"pageInfo": page_info, "edges": edges}}


def create_rawdriver_app(settings: Settings) -> Starlette:
    url = settings.database_url
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)

        async def sqlite_page(first: int) -> dict[str, Any]:
            async def fetch(sql: str, params: Sequence[Any]) -> Any:
                return connection.execute(sql, params).fetchall()

            connection.execute("BEGIN")
            try:
                return await storefront_page(fetch, lambda _: "?", "1", first)
            finally:
                connection.execute("ROLLBACK")

        page = sqlite_page
    else:
        import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        pools: list[Any] = []

        async def pg_page(first: int) -> dict[str, Any]:
            if not pools:
                pools.append(await asyncpg.create_pool(dsn, min_size=1, max_size=10))
            async with pools[0].acquire() as conn, conn.transaction(readonly=True):

                async def fetch(sql: str, params: Sequence[Any]) -> Any:
                    return await conn.fetch(sql, *params)

                return await storefront_page(fetch, lambda i: f"${i}", "true", first)

        page = pg_page

    async def storefront(request: Request) -> Response:
        params = orjson.loads(await request.body())
        first = int((params.get("variables") or {}).get("first", 24))
        return Response(orjson.dumps({"data": await page(first)}), media_type="application/json")

    return Starlette(routes=[Route("/graphql", storefront, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18002, help="0 picks a free port (printed when listening)")
    args = parser.parse_args()
    app = create_rawdriver_app(Settings.from_env())
    tune_gc()
    run(_serve(app, args.host, args.port))


async def _serve(app: Starlette, host: str, port: int) -> None:
    """Served like `python -m gateway serve`: bound first, its address printed once it listens."""
    running = await start(app, bind(host, port), log_level="warning", access_log=False)
    print(serving_line(host, running.port), flush=True)
    await running.wait()


if __name__ == "__main__":
    main()
