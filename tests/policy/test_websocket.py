"""The WebSocket half of /graphql keeps every rule of the HTTP half: limits, introspection, audit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from core.settings import Settings
from gateway.runtime import build_runtime
from tests.customers.helpers import register, sign_in
from tests.live_server import serving
from tests.test_authorization_matrix import ROLES, world  # noqa: F401 (`world` is a fixture)
from vault.audit_models import AuditRecord

GUARD = 15  # seconds: only so that a broken server fails the test instead of hanging it
CREATE = "mutation { cartCreate { cart { id } } }"
VARIANT = "{ products(first: 1) { edges { node { variants { id } } } } }"
ADD = """mutation($id: ID!, $v: ID!) { cartLinesAdd(cartId: $id, lines: [{variantId: $v, quantity: 1}]) {
    cart { version } } }"""
SUBSCRIBE = "subscription($id: ID!) { cartUpdated(cartId: $id) { id version } }"
STORE_ROLES = {"staff_waw", "staff_krk", "admin"}  # who may name the store channel ([channels] in access.toml)


@asynccontextmanager
async def _socket(port: int, init: dict[str, str]) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(ws.recv(), GUARD))["type"] == "connection_ack"
        yield ws


async def _send(ws: ClientConnection, query: str, variables: dict[str, Any] | None = None, id: str = "1") -> None:
    await ws.send(json.dumps({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))


async def _next(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), GUARD))


async def _refused_at_init(port: int, init: dict[str, str]) -> str:
    """The close reason of a connection refused at `connection_init` (close code 4403)."""
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        try:
            message = await asyncio.wait_for(ws.recv(), GUARD)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403, closed
            return closed.rcvd.reason
        raise AssertionError(f"connected: {message!r}")


async def _audit(runtime: Any) -> list[AuditRecord]:
    async with runtime.services.sessions() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def _refusal(settings: Settings, clock: Any, query: str) -> set[str]:
    """The error codes a gateway with `settings` answers `query` with over WebSocket."""
    runtime = build_runtime(settings, clock)
    try:
        async with serving(runtime) as port, _socket(port, {}) as ws:
            await _send(ws, query)
            message = await _next(ws)
    finally:
        await runtime.aclose()
    assert message["type"] == "error", message
    return {e["extensions"]["code"] for e in message["payload"]}


async def test_introspection_disabled_over_http_is_disabled_over_websocket_too(settings: Settings, clock):
    query = "{ __schema { types { name } } }"
    assert await _refusal(settings.replace(introspection=False), clock, query) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_the_depth_limit_holds_over_websocket(settings: Settings, clock):
    query = "{ products(first: 1) { edges { node { variants { sku } } } } }"
    assert await _refusal(settings.replace(max_query_depth=2), clock, query) == {"QUERY_TOO_DEEP"}


async def test_an_agent_reading_a_customer_over_websocket_is_audited(runtime, token_for):
    agent = {**token_for("agent", subject="agent-ws"), "X-Channel": "call-center"}
    async with serving(runtime) as port, _socket(port, agent) as ws:
        await _send(ws, 'query { customer(id: "Q3VzdG9tZXI6MQ") { id email } }')
        message = await _next(ws)
        assert message["type"] == "next" and message["payload"]["data"]["customer"]["email"], message
        assert (await _next(ws))["type"] == "complete"
    records = await _audit(runtime)
    assert {(r.actor, r.operation, r.subject, r.outcome) for r in records} == {
        ("agent-ws", "query customer", "1", "allowed")
    }
    assert "Customer.email" in " ".join(r.fields for r in records)


async def test_an_agent_following_a_customers_cart_is_audited(gql, runtime, token_for):
    cart = (await gql.data(CREATE, headers=token_for("customer", subject="1")))["cartCreate"]["cart"]["id"]
    agent = {**token_for("agent", subject="agent-ws"), "X-Channel": "call-center"}
    async with serving(runtime) as port, _socket(port, agent) as ws:
        await _send(ws, SUBSCRIBE, {"id": cart})
        assert (await _next(ws))["payload"]["data"]["cartUpdated"]["id"] == cart
    records = await _audit(runtime)
    assert {(r.actor, r.operation, r.subject, r.outcome) for r in records} == {
        ("agent-ws", "subscription cartUpdated", "1", "allowed")
    }


async def test_a_subscription_ends_when_its_token_expires(gql, runtime, token_for, clock):
    owner = token_for("customer", subject="1", ttl=60)
    cart = (await gql.data(CREATE, headers=owner))["cartCreate"]["cart"]["id"]
    async with serving(runtime) as port, _socket(port, owner) as ws:
        await _send(ws, SUBSCRIBE, {"id": cart})
        assert (await _next(ws))["type"] == "next"
        clock.advance(timedelta(seconds=61))
        variant = (await gql.data(VARIANT))["products"]["edges"][0]["node"]["variants"][0]["id"]
        changed = await gql.data(ADD, {"id": cart, "v": variant}, headers=token_for("agent", subject="agent-ws"))
        assert changed["cartLinesAdd"]["cart"]["version"] == 2
        message = await _next(ws)
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]
        assert (await _next(ws))["type"] == "complete"


async def test_a_signed_out_token_stops_working_on_an_open_socket_at_once(gql, runtime):
    """As over HTTP: whoever holds a leaked token loses the socket it opened when the owner signs out."""
    await register(gql, "ws-owner@example.com")
    headers = await sign_in(gql, "ws-owner@example.com")
    async with serving(runtime) as port, _socket(port, headers) as ws:
        await _send(ws, "{ me { email } }")
        assert (await _next(ws))["payload"]["data"]["me"]["email"] == "ws-owner@example.com"
        assert (await _next(ws))["type"] == "complete"
        signed_out = await gql.data(
            "mutation($t: String!) { customerAccessTokenDelete(token: $t) { deletedAccessToken } }",
            {"t": headers["Authorization"].split(" ", 1)[1]},
        )
        assert signed_out["customerAccessTokenDelete"]["deletedAccessToken"]
        await _send(ws, "{ me { email } }", id="2")
        refused = await _next(ws)
    assert refused["type"] == "error", refused
    assert [e["extensions"]["code"] for e in refused["payload"]] == ["UNAUTHENTICATED"]


async def test_a_password_change_ends_the_other_tokens_sockets(gql, runtime):
    await register(gql, "ws-victim@example.com")
    stolen, owner = await sign_in(gql, "ws-victim@example.com"), await sign_in(gql, "ws-victim@example.com")
    async with serving(runtime) as port, _socket(port, stolen) as ws:
        changed = await gql.data(
            """mutation { customerPasswordChange(currentPassword: "correct horse battery",
            newPassword: "another long password") { userErrors { code } } }""",
            headers=owner,
        )
        assert changed["customerPasswordChange"]["userErrors"] == []
        await _send(ws, 'mutation { customerUpdate(input: {firstName: "Hijacked"}) { customer { firstName } } }')
        refused = await _next(ws)
    assert refused["type"] == "error", refused
    assert [e["extensions"]["code"] for e in refused["payload"]] == ["UNAUTHENTICATED"]
    fresh = await sign_in(gql, "ws-victim@example.com", password="another long password")
    assert (await gql.data("{ me { firstName } }", headers=fresh))["me"]["firstName"] != "Hijacked"


async def test_an_operators_read_that_cannot_be_audited_is_withheld_over_websocket(runtime, token_for, monkeypatch):
    async def broken(*_: object, **__: object) -> None:
        raise OSError("the audit database is down")

    monkeypatch.setattr(runtime.services.audit, "append", broken)
    agent = {**token_for("agent", subject="agent-ws"), "X-Channel": "call-center"}
    async with serving(runtime) as port, _socket(port, agent) as ws:
        await _send(ws, 'query { customer(id: "Q3VzdG9tZXI6MQ") { id email } }')
        message = await _next(ws)
    assert message["type"] == "error", message
    assert [e["extensions"]["code"] for e in message["payload"]] == ["AUDIT_UNAVAILABLE"]


async def test_an_anonymous_subscriber_to_a_customers_cart_is_told_to_sign_in(gql, runtime, token_for):
    cart = (await gql.data(CREATE, headers=token_for("customer", subject="1")))["cartCreate"]["cart"]["id"]
    async with serving(runtime) as port, _socket(port, {}) as ws:
        await _send(ws, SUBSCRIBE, {"id": cart})
        message = await _next(ws)
    assert message["payload"].get("data") is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]  # as over HTTP


async def test_each_role_may_or_may_not_follow_a_customers_cart(runtime, world) -> None:  # noqa: F811 - the imported fixture
    """The cart rules of the HTTP matrix hold for `cartUpdated`, online and at the till (where only
    staff and admins may connect at all: [channels] in policies/access.toml)."""
    readers = {"customer_a", "agent", "dpo", "admin"}  # the DPO and admins read (audited), as over HTTP
    expected = {"online": readers, "store": {"staff_waw", "staff_krk", "admin"}}
    wrong = []
    async with serving(runtime) as port:
        for channel, allowed in expected.items():
            for role in ROLES:
                init = {**world.headers[role], "X-Channel": "web" if channel == "online" else "store"}
                if channel == "store" and role not in STORE_ROLES:
                    if not (reason := await _refused_at_init(port, init)).startswith("CHANNEL_NOT_ALLOWED: "):
                        wrong.append(f"{role} {channel}: connected, or refused for another reason: {reason!r}")
                    continue
                async with _socket(port, init) as ws:
                    await _send(ws, SUBSCRIBE, {"id": world.extra["cart_a"]})
                    payload = (await _next(ws))["payload"]
                if isinstance(payload, list):  # an `error` message: refused before it ran (a role with no rule)
                    payload = {"errors": payload}
                data = payload.get("data") or {}
                if role in allowed and not (data.get("cartUpdated") and not payload.get("errors")):
                    wrong.append(f"{role} {channel}: refused {payload}")
                denial = "UNAUTHENTICATED" if role == "anonymous" else "FORBIDDEN"
                if role not in allowed and (
                    data.get("cartUpdated") or [e["extensions"]["code"] for e in payload.get("errors", [])] != [denial]
                ):
                    wrong.append(f"{role} {channel}: {payload}")
    assert not wrong, "\n".join(wrong)


async def test_a_malformed_operation_over_websocket_is_a_clear_error(runtime) -> None:
    malformed = [
        {"query": 5},
        {"query": ""},
        {"query": "{ channels { code } }", "variables": "first=1"},
        {"query": "{ channels { code } }", "operationName": 7},
    ]
    async with serving(runtime) as port:
        for payload in malformed:
            async with _socket(port, {}) as ws:
                await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                message = await _next(ws)
            assert message["type"] == "error", (payload, message)
            assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_REQUEST"], (payload, message)


async def test_a_message_larger_than_an_http_body_closes_the_socket_unread(runtime) -> None:
    """The server's own bound (16 MiB) let one WebSocket message carry 16 times what a POST may."""
    big = {"f": {"tag": "t" * 90, "options": [{"name": "Size", "value": "M" * 90}] * 20}}
    payload = {"query": "query($f: ProductFilter) { products(filter: $f) { totalCount } }", "variables": big}
    padding = " " * runtime.settings.max_body_bytes
    async with serving(runtime) as port, _socket(port, {}) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}) + padding)
        try:
            message = await asyncio.wait_for(ws.recv(), GUARD)
        except ConnectionClosed:
            message = None
        assert message is None, message[:200]
        assert ws.close_code == 1009
    async with serving(runtime) as port, _socket(port, {}) as ws:  # an ordinary message is answered
        await _send(ws, "{ __typename }")
        assert (await _next(ws))["payload"] == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("channel", ["store", "call-center"])
async def test_an_operators_channel_named_by_a_customer_or_anyone_refuses_the_connection(
    runtime, token_for, channel: str
) -> None:
    """As over HTTP, before anything runs: the close reason says why and who may use the channel."""
    who = "staff or admin" if channel == "store" else "agent or admin"
    async with serving(runtime) as port:
        anyone_else: list[dict[str, str]] = [{}, token_for("customer", subject="1")]
        for headers in anyone_else:
            in_payload = await _refused_at_init(port, {**headers, "X-Channel": channel})
            assert in_payload.startswith("CHANNEL_NOT_ALLOWED: ") and who in in_payload
            handshake = [*headers.items(), ("X-Channel", channel)]
            async with connect(
                f"ws://127.0.0.1:{port}/graphql",
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers=handshake,
            ) as ws:  # named in the handshake headers instead of the payload: refused alike
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), GUARD)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
                assert closed.value.rcvd.reason.startswith("CHANNEL_NOT_ALLOWED: ")


async def test_staff_at_the_till_and_agents_in_the_call_center_still_connect(runtime, token_for) -> None:
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    phone = {**token_for("agent", subject="agent-ws"), "X-Channel": "call-center"}
    admin = token_for("admin", subject="admin-ws")
    async with serving(runtime) as port:
        for init in (till, phone, {**admin, "X-Channel": "store"}, {**admin, "X-Channel": "call-center"}):
            async with _socket(port, init) as ws:  # acknowledged
                await _send(ws, "{ channels { code } }")
                assert (await _next(ws))["payload"]["data"]["channels"]
