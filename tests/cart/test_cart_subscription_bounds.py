"""`cartUpdated` under a crowd: one read and one pricing per change, and bounded subscribers and sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from commerce.cart import service
from commerce.pricing import service as pricing
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import Runtime, build_runtime
from tests.cart.gql_docs import ADD, CREATE, line, mutate, variants
from tests.cart.test_cart_subscription import next_message, subscription
from tests.conftest import GraphQLClient
from tests.live_server import serving


@pytest.fixture
async def crowded(settings: Settings, clock: Any) -> AsyncIterator[Runtime]:
    bounded = settings.replace(
        ws_max_subscriptions_per_cart=6, ws_max_connections_per_client=8, ws_max_operations_per_connection=2
    )
    runtime = build_runtime(bounded, clock)
    yield runtime
    await runtime.aclose()


@pytest.fixture
async def gql(crowded: Runtime) -> AsyncIterator[GraphQLClient]:
    """Changes go through the crowded gateway itself: its broadcaster is the one subscribers hear."""
    app = create_app(crowded.settings, runtime=crowded)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield GraphQLClient(client)


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(module, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


async def test_many_subscribers_cost_one_read_and_one_pricing_per_change(gql, crowded, monkeypatch):
    v = await variants(gql, min_available=2)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0])]}))["cart"]
    async with serving(crowded) as port, AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(subscription(port, cart["id"], {})) for _ in range(6)]
        for ws in sockets:
            assert (await next_message(ws))["payload"]["data"]["cartUpdated"]["version"] == cart["version"]
        reads = _counting(monkeypatch, service, "get_cart")
        pricings = _counting(monkeypatch, pricing, "price_lines")
        await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[1])]})  # prices its payload once
        for ws in sockets:
            update = (await next_message(ws))["payload"]["data"]["cartUpdated"]
            assert update["version"] == cart["version"] + 1 and len(update["lines"]) == 2
        assert len(reads) == 1, f"the cart was read {len(reads)} times for 6 subscribers"
        assert len(pricings) == 1 + 1, f"the cart was priced {len(pricings) - 1} times for 6 subscribers"


async def test_subscribers_of_one_cart_are_bounded_and_a_closed_one_frees_its_place(gql, crowded):
    cart = (await mutate(gql, CREATE, {}))["cart"]
    async with serving(crowded) as port, AsyncExitStack() as stack:
        first = await stack.enter_async_context(subscription(port, cart["id"], {}))
        assert (await next_message(first))["type"] == "next"
        for _ in range(5):
            ws = await stack.enter_async_context(subscription(port, cart["id"], {}))
            assert (await next_message(ws))["type"] == "next"
        async with subscription(port, cart["id"], {}) as refused:
            message = await next_message(refused)
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["TOO_MANY_SUBSCRIPTIONS"]
        other = (await mutate(gql, CREATE, {}))["cart"]  # another cart is not affected
        async with subscription(port, other["id"], {}) as ws:
            assert (await next_message(ws))["type"] == "next"
        await first.close()
        for _ in range(50):  # the server notices the close
            if crowded.services.cart_feeds.followers(_key(cart["id"])) < 6:
                break
            await asyncio.sleep(0.05)
        async with subscription(port, cart["id"], {}) as ws:
            assert (await next_message(ws))["type"] == "next"


def _key(cart_id: str) -> str:
    from core.ids import from_global_id

    return from_global_id(cart_id, "Cart")[1]


async def test_websockets_per_client_are_bounded(crowded):
    protocols = [Subprotocol("graphql-transport-ws")]
    async with serving(crowded) as port, AsyncExitStack() as stack:
        url = f"ws://127.0.0.1:{port}/graphql"
        held = [await stack.enter_async_context(connect(url, subprotocols=protocols)) for _ in range(8)]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, subprotocols=protocols):
                pass
        assert refused.value.response.status_code == 403
        await held[0].close()
        for _ in range(50):
            try:
                async with connect(url, subprotocols=protocols) as ws:
                    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                    assert json.loads(await ws.recv())["type"] == "connection_ack"
                break
            except InvalidStatus:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("a closed WebSocket did not free its place")


async def test_operations_on_one_websocket_are_bounded(gql, crowded):
    cart = (await mutate(gql, CREATE, {}))["cart"]
    query = "subscription($id: ID!) { cartUpdated(cartId: $id) { id } }"
    async with serving(crowded) as port, subscription(port, cart["id"], {}) as ws:
        assert (await next_message(ws))["type"] == "next"
        for n in (2, 3):
            payload = {"query": query, "variables": {"id": cart["id"]}}
            await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
        messages = [await next_message(ws) for _ in range(2)]
        assert {m["type"] for m in messages} == {"next", "error"}
        [error] = [m for m in messages if m["type"] == "error"]
        assert error["id"] == "3" and "limit" in error["payload"][0]["message"]
