"""What per-object access checks cost: an agent reads one customer's 50 orders, every field guarded.

    .venv/bin/python bench/guarded.py [--orders 50] [--requests 300] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

`Order` and `Customer` are personal types (policies/access.toml): every field of every such object
goes through the access check (`_guard` in schema/authorization.py), and for an audited role each
check also notes an audit record. An agent's grant is unconditional (`agent = true`), so one
decision per field would do; this measures the cost of deciding per object, before and after.

Creates a database of its own (PostgreSQL: a new database beside the one named; SQLite: a temporary
file), migrates and seeds it, gives the demo customer `--orders` orders of 2-3 lines, and builds two
apps in this process on that database: the compiled executor (the default) and graphql-core's own
(`compiled_queries=False`, OMNIGATE_COMPILED_QUERIES). Each is warmed up, then they take turns in
`--rounds` slices of the same query with an agent's token (sequential, no HTTP server). Prints per
target the median over the slices of CPU ms per request (`time.process_time`, all threads), p50/p99
wall latency, the ratio, and for one request: its SQL statements, its access checks and the audit
records it wrote (audit must still happen). Drops what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import schema  # noqa: E402

# An installed copy of the project (an editable install of another checkout) must not be measured.
if not str(Path(schema.__file__ or "").resolve()).startswith(str(ROOT) + "/"):
    raise SystemExit(f"imports resolve to {schema.__file__}, not to {ROOT}: run with PYTHONPATH={ROOT}")

from bench.databases import order_row, scratch_database, seeded  # noqa: E402
from commerce.customers.models import Customer  # noqa: E402
from commerce.orders.models import OrderLineRow, OrderRow  # noqa: E402
from core.clock import FrozenClock  # noqa: E402
from core.db import statement_engines  # noqa: E402
from core.ids import to_global_id  # noqa: E402
from gateway.app import create_app  # noqa: E402
from policies.principal import Principal, Role  # noqa: E402
from schema import authorization  # noqa: E402
from vault.audit_models import AuditRecord  # noqa: E402

QUERY = """query($id: ID!, $first: Int!) {
  customer(id: $id) { id email firstName
    orders(first: $first) { edges { node {
      id number status placedAt total { amount currency } lines { sku quantity total { amount } } } } } } }"""
END = datetime(2026, 11, 1, tzinfo=UTC)
STATUSES = ("PLACED", "COMPLETED", "SHIPPED", "CANCELLED")

Post = Callable[[], Awaitable[dict[str, Any]]]


async def _fill(engine: AsyncEngine, count: int) -> int:
    """`count` orders of 2-3 lines for the seeded demo customer; returns the customer's key."""
    rng = random.Random(7)  # noqa: S311 - repeatable demo data
    async with engine.begin() as conn:
        key, subject = (await conn.execute(select(Customer.id, Customer.subject_id).limit(1))).one()
        orders: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for n in range(1, count + 1):
            placed = END - timedelta(hours=n)
            prices = [Decimal(rng.randrange(1_000, 50_000)) / 100 for _ in range(rng.randint(2, 3))]
            total = sum(prices, Decimal(0))
            orders.append(
                order_row(
                    n,
                    total,
                    placed,
                    id=n,
                    owner_key=f"customer:{key}",
                    customer_key=key,
                    subject_id=subject,
                    status=rng.choice(STATUSES),
                    items_count=len(prices),
                )
            )
            lines.extend(
                {
                    "order_id": n,
                    "variant_id": 1,
                    "location_id": 1,
                    "sku": f"SKU-{i}",
                    "name": "Item",
                    "quantity": 1,
                    "unit_price": price,
                    "subtotal": price,
                    "discount": Decimal(0),
                    "total": price,
                    "tax_rate": Decimal("0.23"),
                    "tax_amount": (price * Decimal("0.23") / Decimal("1.23")).quantize(Decimal("0.01")),
                }
                for i, price in enumerate(prices)
            )
        await conn.execute(insert(OrderRow), orders)
        await conn.execute(insert(OrderLineRow), lines)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    return int(key)


def _poster(client: httpx.AsyncClient, token: str, variables: dict[str, Any]) -> Post:
    """Posts the query as the agent, through the call center, and returns the answer's JSON."""
    body = {"query": QUERY, "variables": variables}
    headers = {"Authorization": f"Bearer {token}", "X-Channel": "call-center"}

    async def post() -> dict[str, Any]:
        result: dict[str, Any] = (await client.post("/graphql", json=body, headers=headers)).json()
        return result

    return post


def _statement_counter(engine: AsyncEngine) -> list[int]:
    """A one-element counter of the statements `engine` sends (its writer shares the events, its reader listens too)."""
    counter = [0]

    def _count(*_args: Any) -> None:
        counter[0] += 1

    for sync_engine in statement_engines(engine):
        event.listen(sync_engine, "before_cursor_execute", _count)
    return counter


async def _audit_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(AuditRecord))).scalar_one())


def _checked(body: dict[str, Any], orders: int) -> dict[str, Any]:
    if body.get("errors"):
        raise SystemExit(f"the query failed: {body['errors']}")
    edges = body["data"]["customer"]["orders"]["edges"]
    if len(edges) != orders or any(not e["node"]["lines"] for e in edges):
        raise SystemExit(f"expected {orders} orders with lines, got {len(edges)}")
    return body


async def _one_request(post: Post, engine: AsyncEngine, counter: list[int], orders: int) -> tuple[int, str, int]:
    """One request's SQL statements, access checks and audit records written.

    Checks: per object (`_note`, what every guarded resolve calls) and per level (a guarded field
    decided once for every object of a plan level, `Guard.grants_every_object`).
    """
    before_rows = await _audit_rows(engine)
    per_object, per_level = [0], [0]
    note, decide = authorization._note, authorization.Guard.grants_every_object

    def counting_note(*args: Any, **kwargs: Any) -> None:
        per_object[0] += 1
        note(*args, **kwargs)

    def counting_decide(guard: authorization.Guard, *args: Any) -> bool:
        per_level[0] += 1
        return decide(guard, *args)

    authorization._note = counting_note
    authorization.Guard.grants_every_object = counting_decide  # type: ignore[method-assign,assignment]
    try:
        before = counter[0]
        _checked(await post(), orders)
        statements = counter[0] - before
    finally:
        authorization._note = note
        authorization.Guard.grants_every_object = decide  # type: ignore[method-assign]
    checks = f"{per_object[0]} per-object and {per_level[0]} per-level access checks"
    return statements, checks, await _audit_rows(engine) - before_rows


async def _slice(post: Post, count: int, orders: int, latencies: list[float]) -> float:
    """`count` sequential requests; returns the CPU ms per request, appends each one's wall ms."""
    cpu = time.process_time()
    for _ in range(count):
        started = time.perf_counter()
        body = await post()
        latencies.append((time.perf_counter() - started) * 1000)
        _checked(body, orders)
    return (time.process_time() - cpu) * 1000 / count


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50, help="the customer's orders, all read (at most 100)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per target")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per target first")
    parser.add_argument("--rounds", type=int, default=4, help="slices per target, taken in turns")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url, drop = await scratch_database(args.database_url, workdir, "guarded")
        try:
            engine, settings = await seeded(
                url,
                workdir,
                products=10,
                audit_checkpoint_file=str(workdir / "audit-checkpoints.jsonl"),
                audit_checkpoint_interval_seconds=0,
                erasure_ledger_file=str(workdir / "erasure-ledger.jsonl"),
            )
            key = await _fill(engine, args.orders)
            clock = FrozenClock(END)
            variables = {"id": to_global_id("Customer", key), "first": args.orders}
            targets = {"compiled": settings, "graphql-core": settings.replace(compiled_queries=False)}
            apps = {name: create_app(s, clock) for name, s in targets.items()}
            clients: list[httpx.AsyncClient] = []
            posts: dict[str, Post] = {}
            counters: dict[str, list[int]] = {}
            for name, app in apps.items():
                runtime = app.state.runtime
                counters[name] = _statement_counter(runtime.services.engine)
                token = runtime.services.tokens.issue(Principal(Role.AGENT, "bench-agent"), timedelta(hours=1)).token
                client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
                clients.append(client)

                posts[name] = _poster(client, token, variables)
            print(
                f"{make_url(url).get_backend_name()}: an agent reads customer {key}'s {args.orders} orders"
                f" ({args.warmup} warm-up, then {args.requests} requests per target in {args.rounds} rounds)"
            )
            for name, post in posts.items():
                await _slice(post, args.warmup, args.orders, [])
                statements, checks, audited = await _one_request(
                    post, apps[name].state.runtime.services.engine, counters[name], args.orders
                )
                print(
                    f"  {name:<12} one request: {statements} SQL statements, {checks}, {audited} audit records written"
                )
                if audited < 1:
                    raise SystemExit(f"{name}: the agent's read wrote no audit record")
            cpu: dict[str, list[float]] = {name: [] for name in posts}
            wall: dict[str, list[float]] = {name: [] for name in posts}
            per_round = max(1, args.requests // args.rounds)
            for n in range(args.rounds):
                order = list(posts) if n % 2 == 0 else list(reversed(posts))
                for name in order:
                    cpu[name].append(await _slice(posts[name], per_round, args.orders, wall[name]))
            median = {name: statistics.median(values) for name, values in cpu.items()}
            for name in posts:
                slices = " ".join(f"{v:.2f}" for v in cpu[name])
                print(
                    f"  {name:<12} CPU {median[name]:6.2f} ms/request (slices {slices})"
                    f"   wall p50 {_p(wall[name], 0.5):6.2f} ms   p99 {_p(wall[name], 0.99):6.2f} ms"
                )
            print(f"  graphql-core / compiled CPU: {median['graphql-core'] / median['compiled']:.2f}x")
            for client in clients:
                await client.aclose()
            for app in apps.values():
                await app.state.runtime.aclose()
            await engine.dispose()
        finally:
            if drop is not None:
                await drop()


if __name__ == "__main__":
    asyncio.run(main())
