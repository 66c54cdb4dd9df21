"""Whether a customer's token still signs them in: revoked one by one, or all at once.

Every replica reads the same tables (one small indexed statement per signed-in request), so a
token signed out on one replica is refused on every other at once, without waiting for any
message to travel. Revocations are kept only until the token would have expired anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.customers.session_models import CustomerAccount, RevokedToken
from core.db import writer

__all__ = ["bump_generation", "is_signed_in", "revoke", "token_generation"]


async def token_generation(engine: AsyncEngine, customer_key: int) -> int:
    """The generation a new token of this customer is issued in (0 until a password changes)."""
    stmt = select(CustomerAccount.token_generation).where(CustomerAccount.customer_key == customer_key)
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one_or_none() or 0)


async def is_signed_in(engine: AsyncEngine, customer_key: int, token_id: str | None, generation: int) -> bool:
    """False when the token was signed out, or issued before the customer's sessions were ended."""
    current = (
        select(CustomerAccount.token_generation).where(CustomerAccount.customer_key == customer_key).scalar_subquery()
    )
    revoked = exists(select(RevokedToken.token_id).where(RevokedToken.token_id == (token_id or "")))
    async with engine.connect() as conn:
        row = (await conn.execute(select(current, revoked))).one()
    return not row[1] and generation >= int(row[0] or 0)


async def revoke(engine: AsyncEngine, token_id: str, customer_key: int, expires_at: datetime, now: datetime) -> None:
    """Sign out one token; expired revocations are dropped on the way (they guard nothing now)."""
    async with writer(engine).begin() as conn:
        await conn.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
        if expires_at > now:
            await conn.execute(
                _insert(conn)(RevokedToken)
                .values(token_id=token_id, customer_key=customer_key, expires_at=expires_at)
                .on_conflict_do_nothing()
            )


async def bump_generation(conn: AsyncConnection, customer_key: int) -> int:
    """End every session of the customer (inside the caller's unit of work); the new generation."""
    result = await conn.execute(
        update(CustomerAccount)
        .where(CustomerAccount.customer_key == customer_key)
        .values(token_generation=CustomerAccount.token_generation + 1)
        .returning(CustomerAccount.token_generation)
    )
    generation = result.scalar_one_or_none()
    if generation is not None:
        return int(generation)
    stmt = (
        _insert(conn)(CustomerAccount)
        .values(customer_key=customer_key, token_generation=literal(1))
        .on_conflict_do_update(
            index_elements=[CustomerAccount.customer_key],
            set_={"token_generation": CustomerAccount.token_generation + 1},
        )
        .returning(CustomerAccount.token_generation)
    )
    return int((await conn.execute(stmt)).scalar_one())


def _insert(conn: AsyncConnection):  # type: ignore[no-untyped-def]
    """The dialect's INSERT, which knows ON CONFLICT (both SQLite and PostgreSQL have it)."""
    return sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
