"""Catalog search at scale: `products(first: 24, search:)` with `totalCount`, one client.

Runs against an already seeded database (`python -m gateway seed --products 1000000`), in
process through the ASGI app (no HTTP server: the figure is the gateway's and the database's),
and prints p50/p99 for three kinds of term: a selective one (a product number, a few hits),
a broad one (a word of product names, ~31,000 hits on a million) and a repeated term (its
count kept from before: what paging costs). Then the same, fewer, as a baseline in the same
run: on PostgreSQL with every count exact (no estimate), on SQLite without FTS5 (LIKE).
Each line also gives the gateway process's CPU per request (the database's is not in it).

    OMNIGATE_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/omnigate_bench \\
        .venv/bin/python bench/search.py [--requests 200] [--explain]

`--explain` first prints the statements one request of each kind sends, each with its plan
(PostgreSQL: EXPLAIN (ANALYZE, BUFFERS), run with the same parameters).

The bar (issue 12): p99 under 50 ms at 1 client on 1,000,000 products on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commerce.catalog import listing
from core.db import on_every_statement
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import build_runtime

QUERY = """query($s: String) { products(first: 24, search: $s) { totalCount edges { node { name } } } }"""
WORDS = ["backpack", "kettle", "headphones", "lantern", "blender", "tent", "jacket", "speaker", "mug", "lamp"]


CPU_MS: list[float] = []  # the process's CPU per request, beside each latency


async def timed(client: httpx.AsyncClient, term: str) -> float:
    cpu = time.process_time()
    started = time.perf_counter()
    response = await client.post("/graphql", json={"query": QUERY, "variables": {"s": term}})
    elapsed = (time.perf_counter() - started) * 1000
    CPU_MS.append((time.process_time() - cpu) * 1000)
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"errors: {body['errors']}")
    return elapsed


async def explain(client: httpx.AsyncClient, engine: AsyncEngine, label: str, term: str) -> None:
    """The statements one request sends, and how PostgreSQL runs each (the plan, timed)."""
    sent: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        sent.append((statement, parameters))

    with on_every_statement(engine, record):
        await timed(client, term)
    print(f"=== {label}: {term!r}, {len(sent)} statements")
    for statement, parameters in sent:
        print(f"--- {' '.join(statement.split())}\n    parameters {parameters}")
        if engine.dialect.name != "postgresql" or not statement.lstrip().upper().startswith("SELECT"):
            continue
        async with engine.connect() as conn:
            plan = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)  # type: ignore[arg-type]
            print("\n".join("    " + row[0] for row in plan))


def line(label: str, times: list[float], cpu: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (
        f"{label:<34} n={len(times):<5} p50 {statistics.median(times):7.2f} ms   p99 {p99:7.2f} ms"
        f"   cpu/request {statistics.mean(cpu):5.2f} ms"
    )


async def measure(client: httpx.AsyncClient, runtime: Any, requests: int, label: str) -> None:
    """The three kinds of request, `requests` of each, one after another; prints their p50/p99."""
    rng = random.Random(12)  # noqa: S311  # benchmark terms, not secrets
    CPU_MS.clear()
    selective = [await timed(client, f"{rng.randrange(1, 999_999):06d}") for _ in range(requests)]
    selective_cpu = CPU_MS[:]
    CPU_MS.clear()
    broad = []
    for n in range(requests):
        runtime.services.product_counts.clear()  # a fresh count every time: the worst case
        broad.append(await timed(client, WORDS[n % len(WORDS)]))
    broad_cpu = CPU_MS[:]
    CPU_MS.clear()
    repeated = [await timed(client, WORDS[n % len(WORDS)]) for n in range(requests)]
    print(f"-- {label}")
    print(line("selective term (a product number)", selective, selective_cpu))
    print(line("broad term, counted every time", broad, broad_cpu))
    print(line("broad term, count kept", repeated, CPU_MS))


@contextmanager
def baseline(dialect: str) -> Iterator[str]:
    """What the indexes and estimates save, to compare with in the same run."""
    if dialect == "postgresql":  # every totalCount counted exactly, however many match
        saved = listing.ESTIMATE_ABOVE
        listing.ESTIMATE_ABOVE = 10**9  # beyond any catalog; LIMIT still fits an INTEGER
        try:
            yield "baseline: exact counts (no estimate)"
        finally:
            listing.ESTIMATE_ABOVE = saved
    else:  # every term read by LIKE from the products, as before the FTS5 table
        saved = listing.TRIGRAM
        listing.TRIGRAM = sys.maxsize
        try:
            yield "baseline: LIKE over every product (before FTS5)"
        finally:
            listing.TRIGRAM = saved


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--baseline-requests", type=int, default=30, help="of each kind, for the baseline (slow)")
    parser.add_argument("--explain", action="store_true", help="print each kind's statements and their plans first")
    args = parser.parse_args()
    settings = Settings.from_env()
    runtime = build_runtime(settings)
    app = create_app(settings, runtime=runtime)
    dialect = runtime.services.engine.dialect.name
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        total = (await client.post("/graphql", json={"query": "{ products(first: 1) { totalCount } }"})).json()
        print(f"catalog: {total['data']['products']['totalCount']:,} products on {dialect}")
        for _ in range(5):
            await timed(client, "warm")
        if args.explain:
            await explain(client, runtime.services.engine, "selective", "000123")
            runtime.services.product_counts.clear()
            await explain(client, runtime.services.engine, "broad, counted", "kettle")
            await explain(client, runtime.services.engine, "broad, count kept", "kettle")
        await measure(client, runtime, args.requests, "as shipped")
        if args.baseline_requests:
            with baseline(dialect) as label:
                await measure(client, runtime, args.baseline_requests, label)
    await runtime.aclose()


if __name__ == "__main__":
    asyncio.run(main())
