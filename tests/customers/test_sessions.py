"""Signing out, renewing a token, and changing a password end sessions at once, everywhere."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from commerce.customers.sessions import SignedIn
from core.db import on_every_statement
from tests.cart.test_cart_subscription import gateway_process
from tests.customers.helpers import PASSWORD, register, sign_in

ME = "{ me { id } }"
DELETE = """mutation($token: String!) { customerAccessTokenDelete(token: $token) {
    deletedAccessToken userErrors { code field } } }"""
RENEW = """mutation($token: String!) { customerAccessTokenRenew(customerAccessToken: $token) {
    accessToken { token expiresAt } userErrors { code field } } }"""
CHANGE = """mutation($current: String!, $new: String!) { customerPasswordChange(currentPassword: $current,
    newPassword: $new) { customer { id } accessToken { token } userErrors { code field } } }"""


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_signed_out_token_is_refused_at_once_and_other_sessions_stay(gql):
    customer = await register(gql, "leaving@example.com")
    laptop, phone = await sign_in(gql, "leaving@example.com"), await sign_in(gql, "leaving@example.com")
    assert (await gql.data(ME, headers=laptop))["me"]["id"] == customer["id"]

    deleted = (await gql.data(DELETE, {"token": _token(laptop)}, headers=laptop))["customerAccessTokenDelete"]
    assert deleted == {"deletedAccessToken": _token(laptop), "userErrors": []}
    refused = await gql.post(ME, headers=laptop)
    assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await gql.data(ME, headers=phone))["me"]["id"] == customer["id"]

    garbage = (await gql.data(DELETE, {"token": "not.a.token"}))["customerAccessTokenDelete"]
    assert garbage == {"deletedAccessToken": None, "userErrors": [{"code": "TOKEN_INVALID", "field": ["token"]}]}


async def test_revocations_are_kept_only_until_the_token_expires(gql, engine, clock):
    from sqlalchemy import func, select

    from commerce.customers.session_models import RevokedToken

    await register(gql, "tidy@example.com")
    first = await sign_in(gql, "tidy@example.com")
    await gql.data(DELETE, {"token": _token(first)})
    clock.advance(timedelta(hours=2))  # past the first token's expiry
    second = await sign_in(gql, "tidy@example.com")
    await gql.data(DELETE, {"token": _token(second)})
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(RevokedToken))).scalar_one() == 1


async def test_a_renewed_token_replaces_the_old_one(gql, clock):
    await register(gql, "renew@example.com")
    old = await sign_in(gql, "renew@example.com")
    clock.advance(timedelta(minutes=30))
    renewed = (await gql.data(RENEW, {"token": _token(old)}))["customerAccessTokenRenew"]
    assert renewed["userErrors"] == []
    assert renewed["accessToken"]["expiresAt"] > (clock.now() + timedelta(minutes=59)).isoformat()
    assert (await gql.data(ME, headers=_bearer(renewed["accessToken"]["token"])))["me"] is not None
    assert (await gql.post(ME, headers=old)).status_code == 401
    again = (await gql.data(RENEW, {"token": _token(old)}))["customerAccessTokenRenew"]
    assert again["accessToken"] is None and again["userErrors"][0]["code"] == "TOKEN_INVALID"


async def test_a_password_change_needs_the_current_one_and_signs_out_every_other_session(gql):
    await register(gql, "changer@example.com")
    here, elsewhere = await sign_in(gql, "changer@example.com"), await sign_in(gql, "changer@example.com")
    wrong = await gql.data(CHANGE, {"current": "not it at all", "new": "a brand new one"}, headers=here)
    assert wrong["customerPasswordChange"]["userErrors"] == [
        {"code": "INVALID_CREDENTIALS", "field": ["currentPassword"]}
    ]
    short = (await gql.data(CHANGE, {"current": PASSWORD, "new": "short"}, headers=here))["customerPasswordChange"]
    assert short["userErrors"] == [{"code": "PASSWORD_TOO_SHORT", "field": ["newPassword"]}]
    assert (await gql.data(ME, headers=elsewhere))["me"] is not None  # nothing changed yet

    changed = await gql.data(CHANGE, {"current": PASSWORD, "new": "a brand new one"}, headers=here)
    payload = changed["customerPasswordChange"]
    assert payload["userErrors"] == []
    for old in (here, elsewhere):
        assert (await gql.post(ME, headers=old)).status_code == 401
    assert (await gql.data(ME, headers=_bearer(payload["accessToken"]["token"])))["me"] is not None
    assert (await gql.data(ME, headers=await sign_in(gql, "changer@example.com", "a brand new one")))["me"]
    refused = await gql.data(
        'mutation { customerAccessTokenCreate(email: "changer@example.com", password: "correct horse battery") '
        "{ accessToken { token } userErrors { code } } }"
    )
    assert refused["customerAccessTokenCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_a_signed_out_token_is_refused_by_another_replica_as_the_broadcast_arrives(gql, settings, tmp_path):
    if settings.database_url.startswith("sqlite"):
        pytest.skip("replicas run on PostgreSQL; SQLite is one host")
    await register(gql, "replicas@example.com")
    headers = await sign_in(gql, "replicas@example.com")
    keys = {"KEK": settings.kek, "BLIND_INDEX_KEY": settings.blind_index_key}  # the same vault as this replica
    async with (
        gateway_process(
            settings, tmp_path, REDIS_URL="redis://127.0.0.1:6379/0", SESSION_CHECK_TTL_SECONDS="60", **keys
        ) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as other,
    ):
        before = await other.post("/graphql", json={"query": ME}, headers=headers)
        assert before.status_code == 200 and before.json()["data"]["me"] is not None
        await gql.data(DELETE, {"token": _token(headers)})  # signed out through this replica
        # The other replica remembered the token as signed in; the sign-out's broadcast empties that
        # memory as it arrives, long before the memory would expire (60 s there).
        deadline = asyncio.get_running_loop().time() + 2
        while (after := await other.post("/graphql", json={"query": ME}, headers=headers)).status_code == 200:
            assert asyncio.get_running_loop().time() < deadline, "the sign-out never reached the other replica"
            await asyncio.sleep(0.02)
        assert after.status_code == 401


async def test_a_replica_that_hears_the_sign_out_refuses_the_token_at_once(gql, runtime, settings, clock):
    """Each replica keeps "still signed in" a while; the sign-out's broadcast empties every replica's memory."""
    from gateway.app import create_app
    from gateway.runtime import build_runtime

    await register(gql, "heard@example.com")
    laptop, phone = await sign_in(gql, "heard@example.com"), await sign_in(gql, "heard@example.com")
    other = build_runtime(settings, clock)  # its own caches, on the same database and the same message bus
    bus = runtime.services.broadcaster
    other.services.broadcaster = bus
    other.services.signed_in = SignedIn(other.services.engine, bus, ttl=3600)  # only the message can empty it
    try:
        app = create_app(other.settings, runtime=other)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://other") as http:
            for headers in (laptop, phone):  # remembered there as signed in
                assert (await http.post("/graphql", json={"query": ME}, headers=headers)).status_code == 200
            session_reads: list[str] = []
            with on_every_statement(other.services.engine, _reads_of(session_reads)):
                for _ in range(2):
                    assert (await http.post("/graphql", json={"query": ME}, headers=laptop)).status_code == 200
            assert session_reads == []  # remembered: no read of the sessions per request
            await gql.data(DELETE, {"token": _token(laptop)}, headers=laptop)  # signed out through this replica
            await asyncio.sleep(0.01)  # the message travels
            assert (await http.post("/graphql", json={"query": ME}, headers=laptop)).status_code == 401
            assert (await http.post("/graphql", json={"query": ME}, headers=phone)).status_code == 200
            changed = await gql.data(CHANGE, {"current": PASSWORD, "new": "a brand new one"}, headers=phone)
            assert changed["customerPasswordChange"]["userErrors"] == []
            await asyncio.sleep(0.01)
            assert (await http.post("/graphql", json={"query": ME}, headers=phone)).status_code == 401
    finally:
        await other.aclose()


def _reads_of(found: list[str]):
    def on_execute(_conn, _cursor, statement: str, *_args) -> None:
        if "revoked_tokens" in statement:
            found.append(statement)

    return on_execute
