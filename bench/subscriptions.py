"""`cartUpdated` fan-out: what one cart change costs with 1, 10 and 100 subscribers on that cart.

    .venv/bin/python bench/subscriptions.py [--changes 20] [--subscribers 1,10,100]

Runs one gateway in this process (uvicorn on a free loopback port, a fresh SQLite database with
a few products), opens N WebSocket subscriptions to one guest cart, then makes `--changes`
changes one after another. Prints per N: the cart reads and pricings per change (the bar: 1
and 1, whatever N), the median and worst time from a change's answer to its update reaching the
last subscriber, and the median time of an unrelated catalog query sent meanwhile. (Before the
shared hub, reads and pricings per change grew with N: one each per subscriber.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce.cart import service  # noqa: E402 - after the path is set
from commerce.pricing import service as pricing  # noqa: E402
from core.db import create_engine  # noqa: E402
from core.migrate import migrate  # noqa: E402
from core.settings import Settings  # noqa: E402
from gateway.app import create_app  # noqa: E402
from gateway.runtime import build_runtime  # noqa: E402
from gateway.seed import seed  # noqa: E402

CREATE = "mutation($v: ID!) { cartCreate(lines: [{variantId: $v, quantity: 1}]) { cart { id } } }"
CHANGE = """mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: []) { cart { version } } }"""
SUBSCRIBE = "subscription($id: ID!) { cartUpdated(cartId: $id) { version total { amount } } }"
CATALOG = "{ products(first: 5) { edges { node { name } } } }"
VARIANT = "{ products(first: 1) { edges { node { variants { id } } } } }"


class Counted:
    """Counts calls of an async function of a module while the benchmark runs."""

    def __init__(self, module: Any, name: str) -> None:
        self.calls = 0
        original = getattr(module, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        setattr(module, name, counted)


async def _subscribe(port: int, cart_id: str, stack: AsyncExitStack) -> ClientConnection:
    ws = await stack.enter_async_context(
        connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")])
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    await ws.recv()
    await ws.send(
        json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": cart_id}}})
    )
    await ws.recv()  # the cart as it stands
    return ws


async def _round(http: httpx.AsyncClient, port: int, subscribers: int, changes: int, variant: str) -> dict[str, Any]:
    cart_id = (await http.post("/graphql", json={"query": CREATE, "variables": {"v": variant}})).json()["data"][
        "cartCreate"
    ]["cart"]["id"]
    reads, prices = Counted(service, "get_cart"), Counted(pricing, "price_lines")
    delays: list[float] = []
    catalog: list[float] = []
    async with AsyncExitStack() as stack:
        sockets = [await _subscribe(port, cart_id, stack) for _ in range(subscribers)]
        reads.calls = prices.calls = 0
        for _ in range(changes):
            await http.post("/graphql", json={"query": CHANGE, "variables": {"id": cart_id}})
            answered = time.perf_counter()
            before = time.perf_counter()
            await http.post("/graphql", json={"query": CATALOG})
            catalog.append(time.perf_counter() - before)
            await asyncio.gather(*(ws.recv() for ws in sockets))
            delays.append(time.perf_counter() - answered)
    return {
        "reads": reads.calls / changes,
        "prices": prices.calls / changes,
        "p50": statistics.median(delays) * 1000,
        "max": max(delays) * 1000,
        "catalog": statistics.median(catalog) * 1000,
    }


async def main(changes: int, counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            kek_file=f"{tmp}/kek.json",
            audit_checkpoint_file=f"{tmp}/checkpoints.jsonl",
            ws_max_subscriptions_per_cart=max(counts),
            ws_max_connections_per_client=max(counts) + 1,
        )
        engine = create_engine(settings.database_url)
        await migrate(engine)
        await seed(engine, products=20, settings=settings)
        await engine.dispose()
        runtime = build_runtime(settings)
        app = create_app(settings, runtime=runtime)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                data = (await http.post("/graphql", json={"query": VARIANT})).json()["data"]
                variant = data["products"]["edges"][0]["node"]["variants"][0]["id"]
                # The mutation reads the cart itself: what no subscriber causes is measured with none.
                base = await _round(http, port, 0, changes, variant)
                print("subscribers  reads/change  pricings/change  delivery p50 ms  max ms  catalog p50 ms")
                print("             (beyond the mutation's own)")
                for n in counts:
                    r = await _round(http, port, n, changes, variant)
                    print(
                        f"{n:>11}  {r['reads'] - base['reads']:>12.1f}  {r['prices'] - base['prices']:>15.1f}"
                        f"  {r['p50']:>15.1f}  {r['max']:>6.1f}  {r['catalog']:>14.1f}"
                    )
        finally:
            server.should_exit = True
            await task
            await runtime.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--subscribers", default="1,10,100")
    args = parser.parse_args()
    asyncio.run(main(args.changes, [int(n) for n in args.subscribers.split(",")]))
