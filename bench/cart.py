"""Cart write path under load: many clients on their own carts, and many on one shared cart.

    .venv/bin/python bench/cart.py [--seconds 4]

Starts its own gateway (on a free port, pinned to CPU 0 with taskset) on a fresh SQLite database
(or OMNIGATE_DATABASE_URL), runs the clients in this process pinned to CPU 1, and prints
throughput and latency percentiles of `cartLinesAdd` at 1, 8 and 50 clients (each on its own
cart) and at 20 clients sharing one cart. After every run it reads the carts back and checks
that no acknowledged add was lost: each line's quantity equals the sum of acknowledged adds.
Every run is bounded by --seconds; the script stops by itself (and stops its server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import ROOT, start_server

SECRET = "bench-secret-0123456789-0123456789-0123456789"
CREATE = "mutation { cartCreate { cart { id } userErrors { code } } }"
ADD = """mutation($cartId: ID!, $lines: [CartLineInput!]!) {
  cartLinesAdd(cartId: $cartId, lines: $lines) { cart { version total { amount } } userErrors { code } } }"""
READ = "query($id: ID!) { cart(id: $id) { lines { quantity variant { id } } } }"
VARIANTS = "{ products(first: 100) { edges { node { variants { id quantityAvailable } } } } }"


def start_gateway(database_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Seed, then serve on port 0 (pinned to CPU 0); returns the server and the port it printed."""
    env = {
        **os.environ,
        "OMNIGATE_DATABASE_URL": database_url,
        "OMNIGATE_JWT_SECRET": SECRET,
        "OMNIGATE_KEK_FILE": str(workdir / "kek.json"),
        "OMNIGATE_LOG_LEVEL": "WARNING",
    }
    pin = ["taskset", "-c", "0"] if sys.platform.startswith("linux") else []
    subprocess.run(
        [sys.executable, "-m", "gateway", "seed", "--products", "200"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return start_server([*pin, sys.executable, "-m", "gateway", "serve", "--port", "0"], env)


def cpu_seconds(pid: int) -> float:
    """User + system CPU the server process used so far (Linux), to tell its cost from the machine's load."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])
    return body["data"]


class Run:
    """Latencies and acknowledged adds of one scenario."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.acked: dict[str, Counter[str]] = {}
        self.refused = 0

    async def client(self, http: httpx.AsyncClient, cart_id: str, variants: list[str], deadline: float) -> None:
        acked = self.acked.setdefault(cart_id, Counter())
        order = variants[:]
        random.shuffle(order)
        i = 0
        while time.monotonic() < deadline:
            variant = order[i % len(order)]
            i += 1
            started = time.perf_counter()
            data = await gql(http, ADD, {"cartId": cart_id, "lines": [{"variantId": variant, "quantity": 1}]})
            self.latencies.append(time.perf_counter() - started)
            if data["cartLinesAdd"]["userErrors"]:
                self.refused += 1  # out of stock or a full cart: refused, so not expected in the cart
            else:
                acked[variant] += 1

    async def lost(self, http: httpx.AsyncClient) -> int:
        """Acknowledged adds missing from the carts (must be 0); extra quantities count too."""
        lost = 0
        for cart_id, acked in self.acked.items():
            cart = (await gql(http, READ, {"id": cart_id}))["cart"]
            held = Counter({line["variant"]["id"]: line["quantity"] for line in cart["lines"]})
            lost += sum(((acked - held) + (held - acked)).values())
        return lost

    def report(self, label: str, seconds: float, lost: int, cpu: float) -> None:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        print(
            f"{label:<28} {len(lat) / seconds:8.0f} adds/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
            f"acked {sum(sum(c.values()) for c in self.acked.values()):6d}   refused {self.refused:5d}   "
            f"lost {lost}   server CPU {cpu / max(1, len(lat)) * 1000:4.1f} ms/add"
        )


async def scenario(
    http: httpx.AsyncClient, server: int, variants: list[str], clients: int, seconds: float, shared: bool
) -> int:
    run = Run()
    carts = (
        [(await gql(http, CREATE))["cartCreate"]["cart"]["id"]] * clients
        if shared
        else [(await gql(http, CREATE))["cartCreate"]["cart"]["id"] for _ in range(clients)]
    )
    started, cpu = time.monotonic(), cpu_seconds(server)
    await asyncio.gather(*[run.client(http, cart, variants, started + seconds) for cart in carts])
    elapsed, cpu = time.monotonic() - started, cpu_seconds(server) - cpu
    lost = await run.lost(http)
    label = f"{clients} clients, one shared cart" if shared else f"{clients} clients, own carts"
    run.report(label, elapsed, lost, cpu)
    return lost


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("OMNIGATE_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp}/bench.db"
        server, port = start_gateway(url, Path(tmp))
        try:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as http:
                data = await gql(http, VARIANTS)
                stocked = [
                    v["id"]
                    for e in data["products"]["edges"]
                    for v in e["node"]["variants"]
                    if v["quantityAvailable"] >= 20
                ]
                await scenario(http, server.pid, stocked[:20], 4, 1.0, shared=False)  # warm-up
                print(
                    f"cartLinesAdd on {url.split(':')[0]}, server on CPU 0, clients on CPU 1, {args.seconds:.0f} s each"
                )
                lost = 0
                for clients in (1, 8, 50):
                    lost += await scenario(http, server.pid, stocked[:90], clients, args.seconds, shared=False)
                lost += await scenario(http, server.pid, stocked, 20, args.seconds, shared=True)
        finally:
            server.terminate()
            server.wait(timeout=15)
    print("no lost update" if lost == 0 else f"LOST UPDATES: {lost}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
