"""Rate limits: a token bucket per client and per account, answered with 429, Retry-After and RATE_LIMITED."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.runtime import Runtime, build_runtime
from policies.limits import LimitsError, parse_limits
from tests.conftest import GraphQLClient
from tests.customers.helpers import SIGN_IN, register

REDIS = ("127.0.0.1", 6379)


def _redis_reachable() -> bool:
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["in-process", "redis"])
def settings(request, settings):
    if request.param == "in-process":
        return settings
    if not _redis_reachable():
        pytest.skip("no Redis at 127.0.0.1:6379")
    return settings.replace(redis_url="redis://127.0.0.1:6379/0", redis_prefix=f"omnigate-test:{uuid.uuid4().hex}:")


@pytest.fixture
async def client_at(runtime: Runtime) -> AsyncIterator[Any]:
    """`client_at("203.0.113.7")`: a GraphQL client connecting from that address."""
    app = create_app(runtime.settings, runtime=runtime)
    opened: list[httpx.AsyncClient] = []

    def make(address: str) -> GraphQLClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        opened.append(httpx.AsyncClient(transport=transport, base_url="http://test"))
        return GraphQLClient(opened[-1])

    yield make
    for client in opened:
        await client.aclose()


async def test_a_hundred_wrong_sign_ins_from_one_client_are_throttled_and_other_clients_are_not(client_at):
    attacker, neighbour = client_at("203.0.113.7"), client_at("198.51.100.9")
    await register(neighbour, "victim@example.com")
    await register(neighbour, "bystander@example.com")
    statuses, waits, codes = [], [], set()
    for n in range(100):
        response = await attacker.post(SIGN_IN, {"email": "victim@example.com", "password": f"guess {n}"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            waits.append(int(response.headers["Retry-After"]))
            codes |= {e["extensions"]["code"] for e in response.json()["errors"]}
            assert response.json()["data"] is None
    assert statuses[0] == 200 and statuses.count(429) >= 70, statuses
    assert codes == {"RATE_LIMITED"} and min(waits) >= 1

    elsewhere = await neighbour.post(SIGN_IN, {"email": "bystander@example.com", "password": "correct horse battery"})
    assert elsewhere.status_code == 200
    assert elsewhere.json()["data"]["customerAccessTokenCreate"]["accessToken"]["token"]


async def test_password_reset_requests_are_limited_per_email_whoever_asks(client_at):
    request = "mutation($e: String!) { customerPasswordResetRequest(email: $e) { userErrors { code } } }"
    answers = [
        (await client_at(f"192.0.2.{n}").post(request, {"e": "Someone@example.com"})).status_code for n in range(5)
    ]
    assert answers == [200, 200, 200, 429, 429]
    other_email = await client_at("192.0.2.200").post(request, {"e": "someone-else@example.com"})
    assert other_email.status_code == 200


def test_a_malformed_limits_file_stops_start_up(settings, tmp_path: Path) -> None:
    with pytest.raises(LimitsError, match="unknown action"):
        parse_limits({"actions": {"sing_in": {"per_client": {"capacity": 5, "per_minute": 1}}}})
    with pytest.raises(LimitsError, match="capacity"):
        parse_limits({"actions": {"sign_in": {"per_client": {"capacity": 0, "per_minute": 1}}}})
    bad = tmp_path / "limits.toml"
    bad.write_text("[actions.sign_in]\nper_client = { capacity = 5 }\n")
    with pytest.raises(LimitsError, match="per_minute"):
        build_runtime(settings.replace(limits_file=str(bad)))
