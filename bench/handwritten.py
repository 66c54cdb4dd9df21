"""The benchmark's yardstick: the storefront query written by hand, with no GraphQL at all.

It runs the same SQL statements as the gateway's loaders (it calls the same commerce service
functions: one page, then categories, variants, prices and stock by id, one statement each)
and returns the same JSON as the gateway does for `bench.storefront.QUERY`. Whatever the
gateway costs on top of this is the price of GraphQL.

Run: python bench/handwritten.py --port 18001 (OMNIGATE_DATABASE_URL names the database).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commerce.catalog import service as catalog
from commerce.catalog.listing import ProductSort
from commerce.catalog.service import ProductQuery
from commerce.inventory.service import stock_by_variant_ids
from commerce.pricing.price_book import price_entries_by_variant_ids
from core.db import ReadScope, create_engine
from core.ids import to_global_id
from core.settings import Settings
from gateway.admission import Admission, admission_limit
from gateway.process import tune_gc
from gateway.serving import bind, run, serving_line, start
from schema.listing import listing_cursor

__all__ = ["create_handwritten_app", "storefront_page"]

CURRENCY = "PLN"  # the web channel's currency, as the gateway answers without X-Channel


async def storefront_page(engine: Any, first: int) -> dict[str, Any]:
    """The `data` of the storefront query: five statements, then plain dicts."""
    products, has_next = await catalog.page_products(engine, ProductQuery(), first=first)
    product_ids = [p.id for p in products]
    categories = await catalog.categories_by_ids(engine, sorted({p.category_id for p in products if p.category_id}))
    variants = await catalog.variants_by_product_ids(engine, product_ids)
    variant_ids = [v.id for p in products for v in variants.get(p.id, [])]
    prices = await price_entries_by_variant_ids(engine, variant_ids, CURRENCY)  # the gateway's price loader's
    stock = await stock_by_variant_ids(engine, variant_ids)

    def category(category_id: int | None) -> dict[str, str] | None:
        found = categories.get(category_id) if category_id is not None else None
        return {"slug": found.slug, "name": found.name} if found else None

    edges = [
        {
            "cursor": listing_cursor(ProductSort(), (None, p.id)),  # the listing's cursor, default order
            "node": {
                "id": to_global_id("Product", p.id),
                "slug": p.slug,
                "name": p.name,
                "category": category(p.category_id),
                "variants": [
                    {
                        "id": to_global_id("ProductVariant", v.id),
                        "sku": v.sku,
                        "name": v.name,
                        "price": {"amount": str(prices[v.id].amount), "currency": CURRENCY},
                        "quantityAvailable": sum(level.available for level in stock.get(v.id, [])),
                    }
                    for v in variants.get(p.id, [])
                ],
            },
        }
        for p in products
    ]
    page_info = {"hasNextPage": has_next, "endCursor": edges[-1]["cursor"] if edges else None}
    return {"products": {"pageInfo": page_info, "edges": edges}}


class _Storefront:
    """The /graphql route's ASGI app, as the gateway's is: the body read before the request's admission
    slot is taken, the response sent within it."""

    def __init__(self, engine: Any, admission: Admission) -> None:
        self.engine, self.admission = engine, admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            params = orjson.loads(await Request(scope, receive).body())
        except ClientDisconnect:
            return  # as the gateway: a client gone before its body arrived is not an error
        async with self.admission.slot():
            first = int((params.get("variables") or {}).get("first", 24))
            reads = ReadScope(self.engine)  # one connection and one read-only transaction, as the gateway's queries
            try:
                body = {"data": await storefront_page(reads, first)}
            finally:
                await reads.aclose()
            await Response(orjson.dumps(body), media_type="application/json")(scope, receive, send)


def create_handwritten_app(settings: Settings) -> Starlette:
    engine = create_engine(settings.database_url)
    admission = Admission(admission_limit(settings.max_concurrent_requests, settings.database_url))  # as `serve`'s
    storefront = _Storefront(engine, admission)
    return Starlette(routes=[Route("/graphql", storefront, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001, help="0 picks a free port (printed when listening)")
    args = parser.parse_args()
    app = create_handwritten_app(Settings.from_env())
    tune_gc()  # the same process tuning as `python -m gateway serve`, for a fair comparison
    run(_serve(app, args.host, args.port))


async def _serve(app: Starlette, host: str, port: int) -> None:
    """Served like `python -m gateway serve`: bound first, its address printed once it listens."""
    running = await start(app, bind(host, port), log_level="warning", access_log=False)
    print(serving_line(host, running.port), flush=True)
    await running.wait()


if __name__ == "__main__":
    main()
