"""Checkout under load: 20 customers checking out at once, on SQLite and on PostgreSQL.

    .venv/bin/python bench/checkout.py [--seconds 5] [--clients 20] [--postgres URL | --no-postgres]

For each database it seeds a fresh one, starts its own gateway (uvicorn, pinned to CPU 0 with
taskset), and runs the clients in this process (CPU 1). Each client is a signed-in customer who,
in a loop, opens a cart with one unit of a popular variant and completes a click & collect
checkout at ST-WAW (test card, authorized by the built-in provider). Only 40 variants are used,
so stock runs out during the run and some checkouts answer INSUFFICIENT_STOCK, as they must.

It prints checkouts/s, p50 and p99 of `checkoutComplete`, the server's CPU per iteration (cartCreate +
checkoutComplete, from /proc: what to compare runs by on a shared machine), placed and refused counts, and then
reads the database: the oversold units (units placed beyond what was on hand at the start, per
variant and store: must be 0) and whether every store's `reserved` equals its open orders' units.
PostgreSQL: `--postgres` names a server URL (default the local one); a database is created for
the run and dropped after. Every run is bounded; the script stops its servers itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cart import SECRET, cpu_seconds, gql, start_gateway  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.settings import Settings  # noqa: E402
from gateway.tokens import TokenService  # noqa: E402
from policies.principal import Principal, Role  # noqa: E402

CREATE = """mutation($lines: [CartLineInput!]) { cartCreate(lines: $lines) { cart { id } userErrors { code } } }"""
CHECKOUT = """mutation($input: CheckoutInput!) { checkoutComplete(input: $input) {
  order { id status } userErrors { code } } }"""
VARIANTS = "{ products(first: 100) { edges { node { variants { id quantityAvailable(locationId: $loc) } } } } }"
LOCATIONS = "{ locations { id code } }"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


class Run:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.placed = 0
        self.refused: dict[str, int] = {}

    async def client(
        self,
        http: httpx.AsyncClient,
        tokens: TokenService,
        who: int,
        variants: list[str],
        location: str,
        deadline: float,
    ) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1  # each round another customer (a refused one would otherwise keep the line in their cart)
            customer = Principal(Role.CUSTOMER, subject=str(who * 100_000 + n))
            headers = {"Authorization": f"Bearer {tokens.issue(customer, timedelta(hours=1)).token}"}
            variant = random.choice(variants)  # noqa: S311 - load shape, not a secret
            response = await http.post(
                "/graphql",
                json={"query": CREATE, "variables": {"lines": [{"variantId": variant, "quantity": 1}]}},
                headers=headers,
            )
            created = response.json()["data"]["cartCreate"]
            if created["userErrors"]:  # sold out since the list was read: not a checkout
                continue
            checkout = {
                "cartId": created["cart"]["id"],
                "idempotencyKey": uuid.uuid4().hex,
                "fulfillmentMethod": "CLICK_AND_COLLECT",
                "pickupLocationId": location,
                "payment": {"method": "card", "token": "4242424242424242"},
            }
            started = time.perf_counter()
            response = await http.post(
                "/graphql", json={"query": CHECKOUT, "variables": {"input": checkout}}, headers=headers
            )
            self.latencies.append(time.perf_counter() - started)
            if response.status_code != 200 or response.json().get("errors"):
                raise RuntimeError(f"checkout failed: {response.status_code} {response.text[:300]}")
            payload = response.json()["data"]["checkoutComplete"]
            if payload["order"] is not None:
                self.placed += 1
            for error in payload["userErrors"]:
                self.refused[error["code"]] = self.refused.get(error["code"], 0) + 1
                if error["code"] == "INSUFFICIENT_STOCK" and variant in variants and len(variants) > 1:
                    variants.remove(variant)  # a shopper moves on to what is still there


async def stock_snapshot(url: str) -> dict[tuple[int, int], int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT variant_id, location_id, on_hand FROM stock_levels"))
            return {(v, loc): on_hand for v, loc, on_hand in rows}
    finally:
        await engine.dispose()


async def audit(url: str, before: dict[tuple[int, int], int]) -> tuple[int, int]:
    """(oversold units, stock levels whose `reserved` differs from their open orders' units)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            placed = await conn.execute(
                text(
                    "SELECT l.variant_id, l.location_id, SUM(l.quantity) FROM order_lines l "
                    "JOIN orders o ON o.id = l.order_id WHERE o.status IN ('PLACED', 'RESERVED') "
                    "GROUP BY l.variant_id, l.location_id"
                )
            )
            ordered = {(v, loc): int(q) for v, loc, q in placed}
            levels = await conn.execute(text("SELECT variant_id, location_id, reserved FROM stock_levels"))
            mismatched = sum(1 for v, loc, reserved in levels if reserved != ordered.get((v, loc), 0))
    finally:
        await engine.dispose()
    oversold = sum(max(0, units - before.get(key, 0)) for key, units in ordered.items())
    return oversold, mismatched


async def bench(url: str, label: str, clients: int, seconds: float, workdir: Path) -> int:
    server, port = start_gateway(url, workdir)  # on a port it picks; ready once it printed it
    try:
        tokens = TokenService(Settings(jwt_secret=SECRET), SystemClock())
        limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:
            waw = next(loc["id"] for loc in (await gql(http, LOCATIONS))["locations"] if loc["code"] == "ST-WAW")
            data = await gql(http, VARIANTS.replace("$loc", f'"{waw}"'))
            stocked = [
                v["id"] for e in data["products"]["edges"] for v in e["node"]["variants"] if v["quantityAvailable"] > 0
            ]
            warm = Run()
            await asyncio.gather(
                *[warm.client(http, tokens, w, stocked[40:60], waw, time.monotonic() + 1.0) for w in (1, 2, 3, 4)]
            )
            before = await stock_snapshot(url)
            run = Run()
            started, cpu = time.monotonic(), cpu_seconds(server.pid)
            await asyncio.gather(
                *[run.client(http, tokens, 10 + c, stocked[:40], waw, started + seconds) for c in range(clients)]
            )
            elapsed, cpu = time.monotonic() - started, cpu_seconds(server.pid) - cpu
    finally:
        server.terminate()
        server.wait(timeout=15)
    oversold, mismatched = await audit(url, before)
    lat = sorted(run.latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    refused = ", ".join(f"{code} {n}" for code, n in sorted(run.refused.items())) or "none"
    print(
        f"{label:<11} {clients} clients  {len(lat) / elapsed:6.1f} checkouts/s   "
        f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   server CPU {1000 * cpu / max(len(lat), 1):5.1f} ms/checkout   "
        f"placed {run.placed}   refused: {refused}   oversold units {oversold}   reserved mismatches {mismatched}"
    )
    return oversold + mismatched


async def create_pg(server_url: str) -> str | None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"omnigate_bench_{uuid.uuid4().hex[:8]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        print(f"PostgreSQL  skipped: {server_url.split('@')[-1]} unreachable ({exc.strerror})")
        return None
    finally:
        await admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_pg(server_url: str, url: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--postgres", default=DEFAULT_PG, help="a PostgreSQL server URL (a database is made per run)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    print(f"checkoutComplete, click & collect, {args.seconds:.0f} s per database; server on CPU 0, clients on CPU 1")
    problems = 0
    with tempfile.TemporaryDirectory() as tmp:
        problems += await bench(f"sqlite+aiosqlite:///{tmp}/bench.db", "SQLite", args.clients, args.seconds, Path(tmp))
        if not args.no_postgres:
            url = await create_pg(args.postgres)
            if url is not None:
                try:
                    problems += await bench(url, "PostgreSQL", args.clients, args.seconds, Path(tmp))
                finally:
                    await drop_pg(args.postgres, url)
    print("nothing oversold" if problems == 0 else f"STOCK PROBLEMS: {problems}")
    return 0 if problems == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
