"""A customer's account security: sign out, renew a token, change or reset a forgotten password.

Signing out revokes the token in the database every replica reads (gateway/auth.py checks it on
each signed-in request), so it stops working everywhere at once. Setting a password ends every
session and answers with a fresh token. A reset request answers the same whether the email is a
customer's or not; a customer gets an email (through the outbox) with a single-use link.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import strawberry
from strawberry.types import Info

from commerce.customers import credentials, sessions
from commerce.customers import errors as customer_errors
from commerce.customers import service as customer_service
from commerce.notifications import service as notifications
from core.db import writer
from core.ids import int_key
from schema.customers import AccessToken, AccessTokenPayload, Customer
from schema.customers import _signed_in_customer as signed_in_customer
from schema.errors import UserError, user_error
from schema.ratelimits import limit
from schema.sessions import issue_customer_token

__all__ = ["AccountMutation"]


@strawberry.type
class AccessTokenDeletePayload:
    deleted_access_token: str | None
    user_errors: list[UserError]


@strawberry.type
class CustomerPasswordPayload:
    customer: Customer | None
    access_token: AccessToken | None = strawberry.field(description="Every other session was signed out: use this.")
    user_errors: list[UserError]


@strawberry.type
class CustomerPasswordResetRequestPayload:
    user_errors: list[UserError]


def _token_invalid() -> UserError:
    return UserError(code="TOKEN_INVALID", field=["token"], message="This is not a valid, unexpired customer token.")


def _customer_session(info: Info, token: str) -> tuple[int, object] | None:
    """The customer key and session of a valid customer token of ours, or None."""
    try:
        principal, session = info.context.services.tokens.verify_session(token)
    except Exception:  # InvalidToken and anything unparsable: not a token we can act on
        return None
    key = int_key(principal.customer_subject or "")
    return (key, session) if key is not None and session is not None else None


async def _password_set(info: Info, result: credentials.PasswordSet) -> CustomerPasswordPayload:
    await info.context.services.signed_in.ended(result.customer_key)  # every older session ended
    issued = await issue_customer_token(info, result.customer_key, result.generation)
    return CustomerPasswordPayload(
        customer=Customer.of(result.customer_key),
        access_token=AccessToken(token=issued.token, expires_at=issued.expires_at),
        user_errors=[],
    )


def _language(info: Info) -> str | None:
    request = info.context.request
    return request.headers.get("accept-language") if request is not None else None


@strawberry.type
class AccountMutation:
    @strawberry.mutation(description="Sign out: this token stops working at once, on every replica.")
    async def customer_access_token_delete(self, info: Info, token: str) -> AccessTokenDeletePayload:
        found = _customer_session(info, token)
        if found is None:
            return AccessTokenDeletePayload(deleted_access_token=None, user_errors=[_token_invalid()])
        key, session = found
        services = info.context.services
        token_id = getattr(session, "token_id", None)
        if token_id is None:  # issued before tokens had ids: it can only lapse
            return AccessTokenDeletePayload(deleted_access_token=None, user_errors=[_token_invalid()])
        await sessions.revoke(services.engine, token_id, key, session.expires_at, services.clock.now())  # type: ignore[attr-defined]
        await services.signed_in.ended(key)
        return AccessTokenDeletePayload(deleted_access_token=token, user_errors=[])

    @strawberry.mutation(description="A fresh token for a valid one, which is signed out in exchange.")
    async def customer_access_token_renew(self, info: Info, customer_access_token: str) -> AccessTokenPayload:
        found = _customer_session(info, customer_access_token)
        services = info.context.services
        if found is not None:
            key, session = found
            token_id, generation = session.token_id, session.generation  # type: ignore[attr-defined]
            if await _renewable(services.engine, key, token_id, generation):
                issued = await issue_customer_token(info, key, generation)
                expires_at = session.expires_at  # type: ignore[attr-defined]
                await sessions.revoke(services.engine, token_id, key, expires_at, services.clock.now())
                await services.signed_in.ended(key)
                return AccessTokenPayload(
                    access_token=AccessToken(token=issued.token, expires_at=issued.expires_at), user_errors=[]
                )
        error = _token_invalid()
        error.field = ["customerAccessToken"]
        return AccessTokenPayload(access_token=None, user_errors=[error])

    @strawberry.mutation(description="The signed-in customer's new password; every other session is signed out.")
    async def customer_password_change(
        self, info: Info, current_password: str, new_password: str
    ) -> CustomerPasswordPayload:
        key = signed_in_customer(info.context.principal)
        await limit(info, "password_change", customer_key=key)
        try:
            result = await credentials.change_password(
                info.context.services.engine, key, current_password, new_password
            )
        except customer_errors.CustomerError as problem:
            field = ["newPassword"] if problem.field == ("input", "password") else None
            return CustomerPasswordPayload(customer=None, access_token=None, user_errors=[user_error(problem, field)])
        return await _password_set(info, result)

    @strawberry.mutation(
        description="Email a single-use link to set a new password. The answer is the same whether or not "
        "the email belongs to a customer."
    )
    async def customer_password_reset_request(self, info: Info, email: str) -> CustomerPasswordResetRequestPayload:
        await limit(info, "password_reset", email=email)
        services, settings = info.context.services, info.context.settings
        ttl = timedelta(seconds=settings.password_reset_ttl_seconds)
        async with writer(services.engine).begin() as conn:
            request = await credentials.request_reset(conn, services.vault, services.clock, email, ttl)
            if request is not None:
                link = settings.password_reset_url.replace("{token}", request.token)
                await notifications.enqueue(
                    conn,
                    services.vault,
                    services.clock,
                    customer_key=request.customer_key,
                    template="password_reset",
                    params={"link": link, "valid_minutes": str(settings.password_reset_ttl_seconds // 60)},
                    language=_language(info),
                )
        return CustomerPasswordResetRequestPayload(user_errors=[])

    @strawberry.mutation(
        description="Set a new password with the token from the reset email (once, before it expires)."
    )
    async def customer_password_reset(self, info: Info, token: str, password: str) -> CustomerPasswordPayload:
        await limit(info, "password_change")
        services = info.context.services
        try:
            result = await credentials.reset_password(services.engine, services.clock, token, password)
        except customer_errors.CustomerError as problem:
            field = ["password"] if problem.field == ("input", "password") else None
            return CustomerPasswordPayload(customer=None, access_token=None, user_errors=[user_error(problem, field)])
        info.context.created_subjects.add(str(result.customer_key))  # the person with the link may read the account
        return await _password_set(info, result)


async def _renewable(engine: Any, key: int, token_id: str | None, generation: int) -> bool:
    """Still signed in, and its customer not erased (or being erased): no token for no one."""
    if not token_id or not await sessions.is_signed_in(engine, key, token_id, generation):
        return False
    return not await customer_service.erased_among(engine, [key])
