"""Authentication: the `Authorization: Bearer` token becomes a `Principal`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.ids import int_key
from gateway.tokens import InvalidToken, TokenSession
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
            principal, session = await asyncio.to_thread(runtime.tokens.verify_session, token.strip())
        else:
            principal, session = runtime.tokens.verify_session(token.strip())
    except InvalidToken as exc:
        raise AuthenticationError(str(exc)) from None
    if principal.role is Role.CUSTOMER and session is not None:
        await _check_signed_in(runtime, principal, session)
    key = int_key(principal.subject or "") if principal.role is Role.CUSTOMER else None
    if key is not None and await runtime.erased.is_erased(key):
        # Erased (GDPR Art. 17): the token stops working now, not when it expires.
        raise AuthenticationError("This account no longer exists.")
    return principal


async def _check_signed_in(runtime: Runtime, principal: Principal, session: TokenSession) -> None:
    """A customer's token stops working once signed out: here at once, elsewhere when the broadcast
    arrives (commerce/customers/sessions.py `SignedIn`)."""
    key = int_key(principal.subject or "")
    signed_in = runtime.services.signed_in
    if key is None or not await signed_in.is_signed_in(key, session.token_id, session.generation):
        raise AuthenticationError("This token was signed out: sign in again.")
