"""A token that cannot be trusted is refused outright: HTTP 401, UNAUTHENTICATED, no data."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from core.clock import FrozenClock
from core.settings import Settings

QUERY = "{ channels { code } }"


def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "agent-1",
        "role": "agent",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(settings: Settings, **overrides: Any) -> str:
    return jwt.encode(_claims(settings, **overrides), settings.jwt_secret, algorithm="HS256")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _refused(gql, token: str) -> dict[str, Any]:
    response = await gql.post(QUERY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert "data" not in body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    return body


async def test_a_valid_token_is_accepted(gql, settings: Settings) -> None:
    await gql.data(QUERY, headers={"Authorization": f"Bearer {_signed(settings)}"})


async def test_an_expired_token_is_refused(gql, token_for, clock: FrozenClock) -> None:
    headers = token_for("agent", ttl=60)
    clock.advance(timedelta(seconds=61))
    body = await _refused(gql, headers["Authorization"].split()[1])
    assert "expired" in body["errors"][0]["message"]


async def test_a_token_expired_by_the_wall_clock_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, iat=int(time.time()) - 120, exp=int(time.time()) - 60))


async def test_a_token_with_a_wrong_signature_is_refused(gql, settings: Settings) -> None:
    forged = jwt.encode(_claims(settings, role="admin"), "another-secret-0123456789-0123456789-01", algorithm="HS256")
    await _refused(gql, forged)


async def test_a_tampered_payload_is_refused(gql, settings: Settings) -> None:
    header, _, signature = _signed(settings).split(".")
    await _refused(gql, f"{header}.{_b64(_claims(settings, role='admin'))}.{signature}")


async def test_an_unsigned_alg_none_token_is_refused(gql, settings: Settings) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(settings, role='admin'))}."
    await _refused(gql, token)


async def test_a_token_naming_an_unknown_role_is_refused(gql, settings: Settings) -> None:
    body = await _refused(gql, _signed(settings, role="superuser"))
    assert "unknown role" in body["errors"][0]["message"]


async def test_a_token_claiming_the_anonymous_role_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, role="anonymous"))


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "%%%" * 10])
async def test_garbage_is_refused(gql, garbage: str) -> None:
    await _refused(gql, garbage)


async def test_a_token_for_another_audience_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, aud="someone-else"))


async def test_a_token_from_another_issuer_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, iss="someone-else"))


async def test_a_staff_token_without_a_store_is_refused(gql, settings: Settings) -> None:
    body = await _refused(gql, _signed(settings, role="staff", sub="staff-1"))
    assert "store" in body["errors"][0]["message"]
    await gql.data(QUERY, headers={"Authorization": f"Bearer {_signed(settings, role='staff', loc='ST-WAW')}"})


async def test_a_customer_token_without_a_subject_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, role="customer", sub=""))


async def test_an_rs256_token_is_refused_when_no_identity_provider_is_configured(gql, settings: Settings) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await _refused(gql, jwt.encode(_claims(settings), key, algorithm="RS256"))


async def test_a_wrong_authorization_scheme_is_refused(gql, settings: Settings) -> None:
    response = await gql.post(QUERY, headers={"Authorization": f"Basic {_signed(settings)}"})
    assert response.status_code == 401


async def test_a_token_not_valid_yet_is_refused(gql, settings: Settings) -> None:
    body = await _refused(gql, _signed(settings, nbf=int(time.time()) + 600))
    assert "not valid" in body["errors"][0]["message"]


async def test_a_token_issued_in_the_future_is_refused(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, iat=int(time.time()) + 600, exp=int(time.time()) + 1200))


@pytest.mark.parametrize("exp", ["soon", True, None], ids=["a string", "a boolean", "missing"])
async def test_a_token_without_a_numeric_expiry_is_refused(gql, settings: Settings, exp: Any) -> None:
    claims = {**_claims(settings), "exp": exp}
    await _refused(
        gql, jwt.encode({k: v for k, v in claims.items() if v is not None}, settings.jwt_secret, algorithm="HS256")
    )


async def test_tokens_are_checked_against_the_gateways_clock(gql, token_for, clock: FrozenClock) -> None:
    clock.advance(timedelta(hours=2))  # the gateway's time, not the wall clock's, decides
    await gql.data(QUERY, headers=token_for("agent", ttl=600))


async def test_a_huge_token_is_refused_unread(gql, settings: Settings) -> None:
    await _refused(gql, _signed(settings, pad="x" * 20_000))


@pytest.mark.parametrize("subject", ["abc", "0001", "1.0", "99999999999", "-1", "None"])
async def test_a_customer_token_must_name_a_customer_key(gql, settings: Settings, subject: str) -> None:
    """`0001` would act as customer 1 in some resolvers and not match `self` in others: refused outright."""
    body = await _refused(gql, _signed(settings, role="customer", sub=subject))
    assert "customer" in body["errors"][0]["message"]


async def test_an_operator_whose_subject_the_audit_log_cannot_hold_is_refused(gql, settings: Settings) -> None:
    """The audit names the actor in 100 characters: PostgreSQL would refuse the record (SQLite would not)."""
    await _refused(gql, _signed(settings, sub="a" * 101))
    await gql.data(QUERY, headers={"Authorization": f"Bearer {_signed(settings, sub='a' * 100)}"})


async def test_the_token_command_mints_a_customer_token_the_gateway_accepts(gql, settings, monkeypatch, capsys):
    import pytest as _pytest

    from core.ids import to_global_id
    from gateway.__main__ import main

    monkeypatch.setenv("OMNIGATE_JWT_SECRET", settings.jwt_secret)
    seen = set()
    for spelling in ("1", "0001", to_global_id("Customer", 1)):
        assert main(["token", "--role", "customer", "--customer", spelling]) == 0
        token = capsys.readouterr().out.strip()
        me = await gql.data("{ me { id email } }", headers={"Authorization": f"Bearer {token}"})
        seen.add((me["me"]["id"], me["me"]["email"]))
    assert seen == {(to_global_id("Customer", 1), "demo@example.com")}
    with _pytest.raises(SystemExit):
        main(["token", "--role", "customer", "--customer", "abc"])


async def test_the_token_command_mints_an_integration_token_that_reads_no_customer(gql, settings, monkeypatch, capsys):
    from core.ids import to_global_id
    from gateway.__main__ import main

    monkeypatch.setenv("OMNIGATE_JWT_SECRET", settings.jwt_secret)
    assert main(["token", "--role", "integration", "--subject", "erp"]) == 0
    headers = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}
    assert (await gql.data("{ channels { code } }", headers=headers))["channels"]  # the token is accepted
    body = await gql.execute(
        "query($id: ID!) { customer(id: $id) { email } }", {"id": to_global_id("Customer", 1)}, headers=headers
    )
    assert body["data"]["customer"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
