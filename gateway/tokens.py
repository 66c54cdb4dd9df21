"""Signed access tokens (JWT): who the bearer is, their role and, for staff, their store.

HS256 with `OMNIGATE_JWT_SECRET` by default. Only the algorithms we configured are
accepted (never `none`), and expiry, issuer and audience are always checked.

An external identity provider (IdP) is trusted only when `OMNIGATE_JWT_JWKS_URL` is set:
then RS256/ES256 tokens (`OMNIGATE_JWT_JWKS_ALGORITHMS`) signed by a key from that JWKS,
issued by `OMNIGATE_JWT_JWKS_ISSUER` for our audience, are accepted too. Its claims map
to ours so:
  - role: the first name in the `OMNIGATE_JWT_ROLE_CLAIM` claim (default `roles`; a string
    or a list) that `OMNIGATE_JWT_ROLE_MAP` maps (default `omnigate-admin=admin,
    omnigate-dpo=dpo, omnigate-agent=agent, omnigate-staff=staff, customer=customer`);
    a token with no mapped role is refused, never treated as anonymous;
  - subject: `sub` (the customer's key for customers, the operator's id otherwise);
  - store: the `OMNIGATE_JWT_LOCATION_CLAIM` claim (default `store`), required for staff.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from jwt.types import Options

from core.clock import Clock
from core.ids import int_key
from core.settings import Settings
from policies.principal import Principal, Role

__all__ = ["InvalidToken", "IssuedToken", "TokenService", "TokenSession", "parse_role_map"]

ALGORITHM = "HS256"
CLOCK_SKEW = 30  # seconds an issuer's clock may run ahead of ours (nbf, iat); never added to exp
MAX_TOKEN_LENGTH = 8192  # ours are a few hundred bytes; an IdP's with many roles a few kB
MAX_SUBJECT_LENGTH = 100  # the audit log's `actor` column


# PyJWT would check exp, nbf and iat against the wall clock; the gateway's Clock decides instead.
def _options(*required: str) -> Options:
    """PyJWT's options: these claims required; the times are checked by us (`_check_times`)."""
    return {"require": list(required), "verify_exp": False, "verify_nbf": False, "verify_iat": False}


class InvalidToken(Exception):
    """The token is malformed, expired, tampered with or names an unknown role."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenSession:
    """What makes one of our tokens revocable: its id (`jti`), the customer's token generation
    it was issued in (`gen`; a password change bumps it), and its expiry."""

    token_id: str | None
    generation: int
    expires_at: datetime


class TokenService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        if settings.is_production and settings.jwt_secret.startswith("dev-only"):
            raise ValueError("set OMNIGATE_JWT_SECRET in production")
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._clock = clock
        self._idp = _IdentityProvider(settings) if settings.jwt_jwks_url else None

    @property
    def may_fetch(self) -> bool:
        """Whether `verify` may block on fetching an identity provider's keys (run it off the loop)."""
        return self._idp is not None

    def issue(self, principal: Principal, ttl: timedelta, generation: int = 0) -> IssuedToken:
        now = self._clock.now()
        expires_at = now + ttl
        claims: dict[str, object] = {
            "sub": principal.subject or "",
            "role": principal.role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(18),  # what customerAccessTokenDelete revokes
        }
        if generation:
            claims["gen"] = generation
        if principal.location:
            claims["loc"] = principal.location
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at)

    def verify(self, token: str) -> Principal:
        return self.verify_session(token)[0]

    def verify_session(self, token: str) -> tuple[Principal, TokenSession | None]:
        """The bearer, and for our own tokens what could have signed them out (None for an IdP's)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("The token is not valid.")
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise InvalidToken("The token is not valid.") from None
        if algorithm != ALGORITHM and self._idp is not None and algorithm in self._idp.algorithms:
            return self._idp.verify(token, self._clock), None
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options=_options("exp", "iat", "sub", "role"),
            )
        except jwt.PyJWTError:
            raise InvalidToken("The token is not valid.") from None
        _check_times(claims, self._clock)
        try:
            role = Role(claims["role"])
        except ValueError:
            raise InvalidToken("The token names an unknown role.") from None
        if role is Role.ANONYMOUS:
            raise InvalidToken("The token names an unknown role.")
        jti, gen = claims.get("jti"), claims.get("gen", 0)
        if (jti is not None and not isinstance(jti, str)) or not isinstance(gen, int) or isinstance(gen, bool):
            raise InvalidToken("The token is not valid.")
        session = TokenSession(jti, gen, datetime.fromtimestamp(int(claims["exp"]), UTC))
        return _principal(role, str(claims["sub"]), claims.get("loc")), session


# The latest time a claim may name: a signed `exp` of 10**20 (or NaN, or infinity, which JSON
# parsers accept) is no time at all, and must be refused here, not crash whatever reads it later.
_LATEST = datetime(9999, 1, 1, tzinfo=UTC).timestamp()


def _a_time(value: object) -> bool:
    """A number of seconds since the epoch that a `datetime` can hold (finite, from 1970 to 9999)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= _LATEST


def _check_times(claims: dict[str, object], clock: Clock) -> None:
    """`exp` (a number) has not passed; `nbf` and `iat`, when present, have come (give or take CLOCK_SKEW)."""
    now = clock.now().timestamp()
    times = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
    if any(v is not None and not _a_time(v) for v in times.values()):
        raise InvalidToken("The token is not valid.")
    if times["exp"] is None or times["exp"] <= now:  # type: ignore[operator]
        raise InvalidToken("The token has expired: sign in again.")
    if any(times[name] is not None and times[name] > now + CLOCK_SKEW for name in ("nbf", "iat")):  # type: ignore[operator]
        raise InvalidToken("The token is not valid yet.")


def _principal(role: Role, subject: str, location: object) -> Principal:
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise InvalidToken("The token's subject is too long.")
    if location is not None and not isinstance(location, str):
        raise InvalidToken("The token's store is not valid.")
    if role is Role.STAFF and not location:
        raise InvalidToken("A staff token must name the staff member's store.")
    key = int_key(subject) if role is Role.CUSTOMER else None
    if role is Role.CUSTOMER and (key is None or str(key) != subject):
        # One spelling per customer: "0001" would be customer 1 to some checks and nobody to `self`.
        raise InvalidToken("A customer token must name the customer by their key.")
    return Principal(role=role, subject=subject or None, location=location or None)


def parse_role_map(raw: str) -> dict[str, Role]:
    """`idp-name=role,...` as a mapping; an unknown role of ours is a configuration error."""
    mapping: dict[str, Role] = {}
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, role = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"OMNIGATE_JWT_ROLE_MAP: {pair!r} is not `idp-role=role`")
        try:
            mapping[name.strip()] = Role(role.strip())
        except ValueError:
            raise ValueError(f"OMNIGATE_JWT_ROLE_MAP: unknown role {role.strip()!r}") from None
        if mapping[name.strip()] is Role.ANONYMOUS:
            raise ValueError("OMNIGATE_JWT_ROLE_MAP: an IdP role cannot map to anonymous")
    return mapping


class _IdentityProvider:
    """Tokens signed by an external IdP, verified with a key from its JWKS (fetched and cached)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_jwks_issuer:
            raise ValueError("OMNIGATE_JWT_JWKS_URL needs OMNIGATE_JWT_JWKS_ISSUER")
        self.algorithms = [a.strip() for a in settings.jwt_jwks_algorithms.split(",") if a.strip()]
        if not self.algorithms or not set(self.algorithms) <= {"RS256", "ES256"}:
            raise ValueError("OMNIGATE_JWT_JWKS_ALGORITHMS: only RS256 and ES256 are accepted from a JWKS")
        self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)
        self._issuer = settings.jwt_jwks_issuer
        self._audience = settings.jwt_jwks_audience or settings.jwt_audience
        self._role_claim = settings.jwt_role_claim
        self._location_claim = settings.jwt_location_claim
        self._roles = parse_role_map(settings.jwt_role_map)

    def verify(self, token: str, clock: Clock) -> Principal:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            # The token's alg must be the key's own: an EC key never checks an RS256 signature.
            if key.algorithm_name not in self.algorithms:
                raise InvalidToken("The token is not valid.")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],
                audience=self._audience,
                issuer=self._issuer,
                options=_options("exp", "sub"),
            )
        except jwt.PyJWKClientConnectionError:
            raise InvalidToken("The identity provider's keys cannot be fetched: try again later.") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            raise InvalidToken("The token is not valid.") from None
        _check_times(claims, clock)
        names = claims.get(self._role_claim)
        names = [names] if isinstance(names, str) else names if isinstance(names, list) else []
        role = next((self._roles[n] for n in names if isinstance(n, str) and n in self._roles), None)
        if role is None:
            raise InvalidToken("The token names an unknown role.")
        return _principal(role, str(claims["sub"]), claims.get(self._location_claim))
