"""Authentication: the `Authorization: Bearer` token becomes a `Principal`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.tokens import InvalidToken
from policies.principal import ANONYMOUS, Principal

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["AuthenticationError", "authenticate"]


class AuthenticationError(Exception):
    """A token was sent but cannot be trusted: never answered with partial data."""


async def authenticate(authorization: str | None, runtime: Runtime) -> Principal:
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("Send `Authorization: Bearer <token>`.")
    try:
        if runtime.tokens.may_fetch:  # PyJWKClient fetches the JWKS synchronously now and then
            return await asyncio.to_thread(runtime.tokens.verify, token.strip())
        return runtime.tokens.verify(token.strip())
    except InvalidToken as exc:
        raise AuthenticationError(str(exc)) from None
