"""`cartUpdated` over a real WebSocket (graphql-transport-ws), in one process and across two."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from core.ids import from_global_id
from tests.cart.gql_docs import ADD, CART_FIELDS, CREATE, line, mutate, quantities, variants
from tests.live_server import free_port, serving

SUBSCRIBE = f"subscription($id: ID!) {{ cartUpdated(cartId: $id) {{ {CART_FIELDS} }} }}"
GUARD = 15  # seconds: only so that a broken server fails the test instead of hanging it
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def subscription(port: int, cart_id: str, init: dict[str, str]) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(ws.recv(), GUARD))["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {"id": cart_id}}})
        )
        yield ws


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), GUARD))


async def test_a_change_on_one_device_reaches_the_others_subscription(gql, runtime, token_for):
    web = {**token_for("customer", subject="1"), "X-Channel": "web"}
    v = await variants(gql, min_available=2)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0])]}, web))["cart"]
    async with serving(runtime) as port:
        init = {"Authorization": token_for("customer", subject="1")["Authorization"], "X-Channel": "mobile"}
        async with subscription(port, cart["id"], init) as ws:
            first = await next_message(ws)  # the cart as it stands: the subscription is live
            assert first["type"] == "next" and first["payload"]["data"]["cartUpdated"]["version"] == cart["version"]
            await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[1])]}, web)
            update = (await next_message(ws))["payload"]["data"]["cartUpdated"]
            assert update["version"] == cart["version"] + 1
            assert quantities(update) == {v[0]["sku"]: 1, v[1]["sku"]: 1}


async def test_another_customer_cannot_subscribe_to_my_cart(gql, runtime, token_for):
    cart = (await mutate(gql, CREATE, {}, token_for("customer", subject="1")))["cart"]
    async with serving(runtime) as port:
        async with subscription(port, cart["id"], token_for("customer", subject="2")) as ws:
            message = await next_message(ws)
            assert message["payload"].get("data") is None
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
        async with subscription(port, cart["id"], {}) as ws:  # as over HTTP: sign in first
            message = await next_message(ws)
            assert message["payload"].get("data") is None
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]


async def test_a_bad_token_is_refused_at_connection_init(runtime):
    async with (
        serving(runtime) as port,
        connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), GUARD)
        assert ws.close_code == 4403


@asynccontextmanager
async def gateway_process(settings: Any, tmp: Path, **extra_env: str) -> AsyncIterator[int]:
    """A separate `python -m gateway serve` on the same database (another replica); `extra_env`
    adds OMNIGATE_* variables, e.g. REDIS_URL="redis://..."."""
    port = free_port()
    env = {
        **os.environ,
        **{f"OMNIGATE_{name}": value for name, value in extra_env.items()},
        "OMNIGATE_DATABASE_URL": settings.database_url,
        "OMNIGATE_PORT": str(port),
        "OMNIGATE_JWT_SECRET": settings.jwt_secret,
        "OMNIGATE_KEK_FILE": str(tmp / f"kek-{port}.json"),
        "OMNIGATE_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the gateway process did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=GUARD)


async def test_a_change_through_one_replica_reaches_a_subscriber_on_another(gql, settings, token_for, tmp_path):
    if settings.database_url.startswith("sqlite"):
        pytest.skip("replicas share changes through PostgreSQL LISTEN/NOTIFY; SQLite is one host")
    auth = token_for("customer", subject="1")
    v = await variants(gql, min_available=2)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0])]}, auth))["cart"]
    async with (
        gateway_process(settings, tmp_path) as port_a,
        gateway_process(settings, tmp_path) as port_b,
        subscription(port_a, cart["id"], auth) as ws,
    ):
        assert (await next_message(ws))["type"] == "next"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as b:
            response = await b.post(
                "/graphql",
                headers={**auth, "X-Channel": "mobile"},
                json={"query": ADD, "variables": {"cartId": cart["id"], "lines": [line(v[1], 1)]}},
            )
            assert response.json()["data"]["cartLinesAdd"]["userErrors"] == []
        update = (await next_message(ws))["payload"]["data"]["cartUpdated"]
        assert quantities(update) == {v[0]["sku"]: 1, v[1]["sku"]: 1}


async def test_an_unexpected_error_in_a_subscription_is_masked(gql, runtime, token_for, monkeypatch):
    from commerce.cart import service

    cart = (await mutate(gql, CREATE, {}))["cart"]

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("internal detail that must not reach the client")

    async with serving(runtime) as port, subscription(port, cart["id"], {}) as ws:
        assert (await next_message(ws))["type"] == "next"
        monkeypatch.setattr(service, "get_cart", broken)
        await runtime.services.broadcaster.publish(f"cart:{from_global_id(cart['id'], 'Cart')[1]}")
        message = await next_message(ws)
    error = message["payload"]["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "internal detail" not in json.dumps(message)


async def test_subscribers_hear_changes_again_after_the_listening_connection_is_lost(runtime, settings, engine):
    """A dropped LISTEN connection is re-opened for the subscribers already waiting, who are told to re-read."""
    from sqlalchemy import text

    if settings.database_url.startswith("sqlite"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    broadcaster = runtime.services.broadcaster
    async with broadcaster.subscribe("cart:lost") as messages:
        async with engine.connect() as conn:
            await conn.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": broadcaster._connection.get_server_pid()}
            )
            await conn.commit()
        assert await asyncio.wait_for(anext(messages), GUARD) == ""  # listening again: re-read what you hold
        await broadcaster.publish("cart:lost", "after")
        assert await asyncio.wait_for(anext(messages), GUARD) == "after"


async def test_after_login_merges_a_guest_cart_its_owner_follows_it_and_the_anonymous_holder_is_cut_off(
    gql, runtime, token_for
):
    from tests.cart.gql_docs import ATTACH

    web = {**token_for("customer", subject="1"), "X-Channel": "web"}
    v = await variants(gql, min_available=2)
    own = (await mutate(gql, CREATE, {"lines": [line(v[0])]}, web))["cart"]
    guest = (await mutate(gql, CREATE, {"lines": [line(v[1])]}))["cart"]
    async with (
        serving(runtime) as port,
        subscription(port, guest["id"], {}) as anonymous,
        subscription(port, guest["id"], {"Authorization": web["Authorization"]}) as owner,
    ):
        assert (await next_message(anonymous))["type"] == "next"
        assert (await next_message(owner))["type"] == "next"
        await mutate(gql, ATTACH, {"cartId": guest["id"]}, web)
        followed = (await next_message(owner))["payload"]["data"]["cartUpdated"]
        assert followed["id"] == own["id"]
        assert quantities(followed) == {v[0]["sku"]: 1, v[1]["sku"]: 1}
        assert await next_message(anonymous) == {"id": "1", "type": "complete"}  # not a word of the customer's cart
        await mutate(gql, ADD, {"cartId": own["id"], "lines": [line(v[0])]}, web)  # the owner hears the merged cart
        assert quantities((await next_message(owner))["payload"]["data"]["cartUpdated"]) == {
            v[0]["sku"]: 2,
            v[1]["sku"]: 1,
        }


async def test_a_subscription_stops_showing_the_cart_once_its_token_has_expired(gql, runtime, token_for, clock):
    """A socket opened with a customer's token does not stream their cart on past the token's expiry."""
    from datetime import timedelta

    web = {**token_for("customer", subject="1"), "X-Channel": "web"}
    v = await variants(gql, min_available=2)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0])]}, web))["cart"]
    async with serving(runtime) as port:
        short = token_for("customer", subject="1", ttl=60)
        async with subscription(port, cart["id"], short) as ws:
            assert (await next_message(ws))["type"] == "next"
            clock.advance(timedelta(seconds=61))
            await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[1])]}, web)  # web's token lasts an hour
            message = await next_message(ws)
    assert message["type"] == "next" and message["payload"].get("data") is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]
