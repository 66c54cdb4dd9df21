"""Signed access tokens (JWT): who the bearer is, their role and, for staff, their store.

HS256 with `OMNIGATE_JWT_SECRET` by default. Only the algorithms we configured are
accepted (never `none`), and expiry, issuer and audience are always checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from core.clock import Clock
from core.settings import Settings
from policies.principal import Principal, Role

__all__ = ["InvalidToken", "IssuedToken", "TokenService"]

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is malformed, expired, tampered with or names an unknown role."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime


class TokenService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        if settings.is_production and settings.jwt_secret.startswith("dev-only"):
            raise ValueError("set OMNIGATE_JWT_SECRET in production")
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._clock = clock

    def issue(self, principal: Principal, ttl: timedelta) -> IssuedToken:
        now = self._clock.now()
        expires_at = now + ttl
        claims = {
            "sub": principal.subject or "",
            "role": principal.role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if principal.location:
            claims["loc"] = principal.location
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "role"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The token has expired: sign in again.") from None
        except jwt.PyJWTError:
            raise InvalidToken("The token is not valid.") from None
        if int(claims["exp"]) <= int(self._clock.now().timestamp()):
            raise InvalidToken("The token has expired: sign in again.")
        try:
            role = Role(claims["role"])
        except ValueError:
            raise InvalidToken("The token names an unknown role.") from None
        if role is Role.ANONYMOUS:
            raise InvalidToken("The token names an unknown role.")
        return Principal(role=role, subject=str(claims["sub"]) or None, location=claims.get("loc"))
