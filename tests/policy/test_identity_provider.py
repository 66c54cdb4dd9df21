"""Tokens from an external identity provider, verified with keys from its JWKS, mapped to our roles.

The IdP is played by locally generated RSA and EC keys and a JWKS served over HTTP on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from core.settings import Settings
from gateway.runtime import Runtime
from gateway.tokens import InvalidToken
from policies.principal import Principal, Role

ISSUER = "https://idp.example.test/"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
PORTS = range(18310, 18330)


def _jwks() -> bytes:
    rsa_jwk = {**RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True), "kid": "rsa-1", "use": "sig", "alg": "RS256"}
    ec_jwk = {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": "ec-1", "use": "sig", "alg": "ES256"}
    return json.dumps({"keys": [rsa_jwk, ec_jwk]}).encode()


class _JwksHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = _jwks()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), _JwksHandler)
            break
        except OSError:
            continue
    else:
        pytest.fail(f"no free port in {PORTS} for the JWKS server")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(settings: Settings, jwks_url: str) -> Settings:
    return settings.replace(jwt_jwks_url=jwks_url, jwt_jwks_issuer=ISSUER)


def _idp_token(key: Any = RSA_KEY, algorithm: str = "RS256", kid: str | None = "rsa-1", **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "u-77", "iss": ISSUER, "aud": "omnigate", "iat": now, "exp": now + 600, "roles": ["omnigate-agent"]}
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None},
        key,
        algorithm=algorithm,
        headers={"kid": kid} if kid is not None else None,
    )


def test_an_rs256_token_from_the_identity_provider_maps_to_our_role(runtime: Runtime) -> None:
    assert runtime.tokens.verify(_idp_token()) == Principal(Role.AGENT, subject="u-77")


def test_an_es256_token_from_the_identity_provider_is_accepted(runtime: Runtime) -> None:
    token = _idp_token(EC_KEY, "ES256", "ec-1", roles=["omnigate-dpo"], sub="dpo-9")
    assert runtime.tokens.verify(token) == Principal(Role.DPO, subject="dpo-9")


def test_staff_from_the_identity_provider_carry_their_store(runtime: Runtime) -> None:
    token = _idp_token(roles=["employee", "omnigate-staff"], store="ST-KRK")
    assert runtime.tokens.verify(token) == Principal(Role.STAFF, subject="u-77", location="ST-KRK")


def test_a_role_claim_given_as_a_single_string_is_mapped(runtime: Runtime) -> None:
    assert runtime.tokens.verify(_idp_token(roles="customer", sub="77")) == Principal(Role.CUSTOMER, subject="77")


def test_an_identity_provider_customer_must_be_named_by_their_customer_key(runtime: Runtime) -> None:
    with pytest.raises(InvalidToken, match="customer"):
        runtime.tokens.verify(_idp_token(roles="customer", sub="u-77"))


def _public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256_with(secret: bytes, **headers: Any) -> str:
    """The `alg` confusion attack: HS256 "signed" with the IdP's public key, which anyone has.

    Signed by hand: PyJWT refuses a PEM as an HMAC key, an attacker's tool does not.
    """
    now = int(time.time())
    claims = {
        "sub": "u-77",
        "iss": ISSUER,
        "aud": "omnigate",
        "iat": now,
        "exp": now + 600,
        "role": "admin",
        "roles": ["omnigate-admin"],
    }

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', **headers}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


@pytest.mark.parametrize("headers", [{}, {"kid": "rsa-1"}], ids=["no kid", "the RSA key's kid"])
def test_an_hs256_token_signed_with_the_identity_providers_public_key_is_refused(runtime: Runtime, headers) -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        runtime.tokens.verify(_hs256_with(_public_pem(), **headers))


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: _idp_token(roles=["employee"]), "unknown role"),
        (lambda: _idp_token(roles=None), "unknown role"),
        (lambda: _idp_token(roles=["omnigate-staff"]), "store"),
        (lambda: _idp_token(iss="https://evil.example.test/"), "not valid"),
        (lambda: _idp_token(aud="another-app"), "not valid"),
        (lambda: _idp_token(exp=int(time.time()) - 5), "expired"),
        (lambda: _idp_token(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "not valid"),
        (lambda: _idp_token(kid="rsa-unknown"), "not valid"),
        (lambda: _idp_token(kid="../../etc/passwd"), "not valid"),
        (lambda: _idp_token(kid=None), "not valid"),
        (lambda: _idp_token(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda: _idp_token(exp=None), "not valid"),
        (lambda: _idp_token(EC_KEY, "ES256", "rsa-1"), "not valid"),
    ],
    ids=[
        "unmapped role",
        "no role",
        "staff without store",
        "wrong issuer",
        "wrong audience",
        "expired",
        "key not in the JWKS",
        "unknown kid",
        "a path as kid",
        "no kid",
        "not before later",
        "no expiry",
        "key of another type",
    ],
)
def test_an_untrustworthy_identity_provider_token_is_refused(runtime: Runtime, token: Any, why: str) -> None:
    with pytest.raises(InvalidToken, match=why):
        runtime.tokens.verify(token())


async def test_an_identity_provider_token_is_accepted_over_http(gql) -> None:
    await gql.data("{ channels { code } }", headers={"Authorization": f"Bearer {_idp_token()}"})
    response = await gql.post("{ channels { code } }", headers={"Authorization": f"Bearer {_idp_token(roles=['x'])}"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_our_own_hs256_tokens_still_work_beside_the_identity_provider(runtime: Runtime, token_for) -> None:
    token = token_for("admin")["Authorization"].split()[1]
    assert runtime.tokens.verify(token).role is Role.ADMIN
