"""Authentication: the `Authorization: Bearer` token becomes a `Principal`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.ids import int_key
from gateway.tokens import InvalidToken
from policies.principal import ANONYMOUS, Principal, Role

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
            principal = await asyncio.to_thread(runtime.tokens.verify, token.strip())
        else:
            principal = runtime.tokens.verify(token.strip())
    except InvalidToken as exc:
        raise AuthenticationError(str(exc)) from None
    key = int_key(principal.subject or "") if principal.role is Role.CUSTOMER else None
    if key is not None and await runtime.erased.is_erased(key):
        # Erased (GDPR Art. 17): the token stops working now, not when it expires.
        raise AuthenticationError("This account no longer exists.")
    return principal
