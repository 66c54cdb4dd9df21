"""What a shop's pages cost: a category page (sorted, filtered, with facets) and a product page.

    .venv/bin/python bench/shop_pages.py [--products 10000] [--reps 30]

Seeds a temporary SQLite database, then requests each page in-process (httpx's ASGI transport:
no network, one process) `--reps` times after a warm-up, and prints per page the median and p90
latency and the SQL statements one request runs (the same at any page size: no N+1). The
category page asks for 24 products with media, price range, availability at a store, options
and variants' prices, plus the four facets over the whole filtered catalog, so it shows what
facet counting costs as the catalog grows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from core.db import create_engine, on_every_statement
from core.migrate import migrate
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import build_runtime
from gateway.seed import seed
from tests.catalog.test_shop_pages import CATEGORY_PAGE, PRODUCT_PAGE

KEYS: dict[str, Any] = {
    "kek": "1:" + base64.b64encode(b"omnigate-bench-kek-only-32bytes!").decode(),
    "blind_index_key": base64.b64encode(b"omnigate-bench-blind-index-32byt").decode(),
}


async def _measure(client: httpx.AsyncClient, engine: Any, query: str, variables: dict[str, Any], reps: int) -> str:
    statements = 0

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal statements
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's explicit BEGIN is not a query
            statements += 1

    body = {"query": query, "variables": variables}
    for _ in range(3):  # warm-up: plans, caches, connections
        response = await client.post("/graphql", json=body)
        assert response.status_code == 200 and "errors" not in response.json(), response.text
    with on_every_statement(engine, count):
        await client.post("/graphql", json=body)
    timings = []
    for _ in range(reps):
        started = time.perf_counter()
        await client.post("/graphql", json=body)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p90 = timings[int(len(timings) * 0.9) - 1]
    return f"median {statistics.median(timings):6.1f} ms  p90 {p90:6.1f} ms  {statements} SQL statements"


async def main(products: int, reps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'shop.db'}",
            jwt_secret="bench-secret-0123456789-0123456789-0123",
            kek_file=str(Path(tmp) / "kek.json"),
            **KEYS,
        )
        engine = create_engine(settings.database_url)
        await migrate(engine)
        started = time.perf_counter()
        await seed(engine, products=products, settings=settings)
        await engine.dispose()
        print(f"seeded {products} products in {time.perf_counter() - started:.1f}s")
        runtime = build_runtime(settings)
        app = create_app(settings, runtime=runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            stores = (await client.post("/graphql", json={"query": "{ locations(kind: STORE) { id } }"})).json()
            store = stores["data"]["locations"][0]["id"]
            pages = {
                "category page, 24 by price, with facets": (
                    CATEGORY_PAGE,
                    {
                        "slug": "kitchen",
                        "first": 24,
                        "sort": "PRICE",
                        "store": store,
                        "filter": {"categorySlug": "kitchen"},
                    },
                ),
                "whole catalog, 24 by title, with facets": (
                    CATEGORY_PAGE,
                    {"slug": "kitchen", "first": 24, "sort": "TITLE", "store": store, "filter": {}},
                ),
                "product page, six variants": (
                    PRODUCT_PAGE,
                    {"slug": "product-8", "store": store, "chosen": [{"name": "Size", "value": "M"}]},
                ),
            }
            for name, (query, variables) in pages.items():
                print(f"{name:42s} {await _measure(client, runtime.services.engine, query, variables, reps)}")
        await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.products, args.reps))
