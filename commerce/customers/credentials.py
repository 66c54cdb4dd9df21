"""Changing a password, and resetting a forgotten one through a single-use emailed link.

A reset token is 256 random bits, emailed (through the notifications outbox) and stored only as
its SHA-256: a database reader cannot use it. It expires, and it is used up by a conditional
update, so two clicks of one link reset once. Asking for a reset answers the same whether the
email belongs to a customer or not; what differs (a message is queued) is never shown.
Either way of setting a password ends every other session (the token generation is bumped).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.customers import errors, sessions
from commerce.customers.models import Customer
from commerce.customers.passwords import hash_password, verify_password
from commerce.customers.service import PASSWORD_MAX, PASSWORD_MIN
from commerce.customers.session_models import PasswordResetToken
from core.clock import Clock
from core.db import writer
from vault.service import Vault

__all__ = [
    "PasswordSet",
    "ResetRequest",
    "change_password",
    "check_new_password",
    "request_reset",
    "reset_password",
    "subject_of",
]


@dataclass(frozen=True, slots=True)
class PasswordSet:
    """The customer whose password was set, and the token generation their new token needs."""

    customer_key: int
    generation: int


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """A queued reset: the customer and the raw token (for the email only; never stored)."""

    customer_key: int
    token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise errors.PasswordTooShort(PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise errors.PasswordTooLong(PASSWORD_MAX)


async def subject_of(conn: AsyncConnection, customer_key: int) -> str | None:
    """The customer's vault subject, read in the caller's unit of work (None: no such customer)."""
    stmt = select(Customer.subject_id).where(Customer.id == customer_key)
    return (await conn.execute(stmt)).scalar_one_or_none()


async def _set_password(conn: AsyncConnection, customer_key: int, password_hash: str) -> int:
    await conn.execute(
        update(Customer)
        .where(Customer.id == customer_key)
        .values(password_hash=password_hash, failed_logins=0, locked_until=None)
    )
    return await sessions.bump_generation(conn, customer_key)


async def change_password(engine: AsyncEngine, customer_key: int, current: str, new: str) -> PasswordSet:
    """`InvalidCredentials` unless `current` is the password now; every session ends."""
    check_new_password(new)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(Customer.password_hash).where(Customer.id == customer_key))).scalar()
    if len(current) > PASSWORD_MAX or not await verify_password(stored, current):
        raise errors.WrongPassword()
    new_hash = await hash_password(new)
    async with writer(engine).begin() as conn:
        # only if the password is still the one checked: a concurrent change wins, this one retries
        result = await conn.execute(
            update(Customer)
            .where(Customer.id == customer_key, Customer.password_hash == stored)
            .values(password_hash=new_hash)
        )
        if result.rowcount != 1:
            raise errors.ProfileConflict()
        generation = await _set_password(conn, customer_key, new_hash)
    return PasswordSet(customer_key, generation)


async def request_reset(
    conn: AsyncConnection, vault: Vault, clock: Clock, email: str, ttl: timedelta
) -> ResetRequest | None:
    """A new reset token for the customer with this email, in the caller's unit of work (which
    also queues the email); None when there is no such customer, which the caller must not show."""
    subject = await vault.lookup_by_email(email, conn)
    if subject is None:
        return None
    stmt = select(Customer.id).where(Customer.subject_id == subject, Customer.password_hash != "")
    customer_key = (await conn.execute(stmt)).scalar_one_or_none()
    if customer_key is None:
        return None
    token = secrets.token_urlsafe(32)
    now = clock.now()
    await conn.execute(
        insert(PasswordResetToken).values(
            customer_key=customer_key, token_hash=_digest(token), created_at=now, expires_at=now + ttl
        )
    )
    return ResetRequest(customer_key, token)


async def reset_password(engine: AsyncEngine, clock: Clock, token: str, password: str) -> PasswordSet:
    """Use a reset token once: `ResetTokenInvalid` when unknown, used or expired."""
    check_new_password(password)
    if not 20 <= len(token) <= 200:
        raise errors.ResetTokenInvalid()
    new_hash = await hash_password(password)
    now = clock.now()
    async with writer(engine).begin() as conn:
        used = await conn.execute(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.token_hash == _digest(token),
                PasswordResetToken.used_at.is_(None),
                PasswordResetToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordResetToken.customer_key)
        )
        customer_key = used.scalar_one_or_none()
        if customer_key is None:
            raise errors.ResetTokenInvalid()
        # every other link sent to this customer stops working too
        await conn.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.customer_key == customer_key, PasswordResetToken.used_at.is_(None))
            .values(used_at=now)
        )
        generation = await _set_password(conn, customer_key, new_hash)
    return PasswordSet(customer_key, generation)
