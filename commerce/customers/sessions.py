"""Whether a customer's token still signs them in: revoked one by one, or all at once.

Every replica reads the same tables. `SignedIn` keeps the answer a short while per token (a
signed-in request then costs no connection, no transaction and no statement): whoever ends a
session calls `SignedIn.ended`, which forgets at once on this replica and broadcasts to the
others, which forget too; `ttl` bounds how long a replica that missed the message (or another
process, e.g. the CLI) may answer from memory. A "signed out" answer is final: a revoked token
never comes back, and a generation only grows. Revocations are kept only until the token would
have expired anyway.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import bindparam, delete, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.customers.session_models import CustomerAccount, RevokedToken
from core.broadcast import Broadcaster, ForgetOnMessage
from core.db import writer

__all__ = ["SESSIONS_TOPIC", "SignedIn", "bump_generation", "is_signed_in", "revoke", "token_generation"]

SESSIONS_TOPIC = "customer.sessions-ended"
MAX_KEPT = 100_000  # tokens remembered per replica; past it the memory is emptied and refilled


async def token_generation(engine: AsyncEngine, customer_key: int) -> int:
    """The generation a new token of this customer is issued in (0 until a password changes)."""
    stmt = select(CustomerAccount.token_generation).where(CustomerAccount.customer_key == customer_key)
    async with engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one_or_none() or 0)


_STATE = select(
    select(CustomerAccount.token_generation)
    .where(CustomerAccount.customer_key == bindparam("customer"))
    .scalar_subquery(),
    exists(select(RevokedToken.token_id).where(RevokedToken.token_id == bindparam("token"))),
)


async def is_signed_in(engine: AsyncEngine, customer_key: int, token_id: str | None, generation: int) -> bool:
    """False when the token was signed out, or issued before the customer's sessions were ended."""
    async with engine.connect() as conn:
        row = (await conn.execute(_STATE, {"customer": customer_key, "token": token_id or ""})).one()
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


class SignedIn:
    """`is_signed_in`, answered from a short per-replica memory (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, broadcaster: Broadcaster, ttl: float) -> None:
        self._engine = engine
        self._broadcaster = broadcaster
        self._ttl = ttl
        self._known: dict[tuple[int, str | None, int], tuple[bool, float]] = {}
        self._epoch = 0  # moves on every forget: a read that raced with one is not kept
        self._listener = ForgetOnMessage(broadcaster, SESSIONS_TOPIC, self.forget)

    async def is_signed_in(self, customer_key: int, token_id: str | None, generation: int) -> bool:
        self._listener.listen()
        key = (customer_key, token_id, generation)
        cached = self._known.get(key)
        now = time.monotonic()
        if cached is not None and (not cached[0] or now - cached[1] < self._ttl):
            return cached[0]
        epoch = self._epoch
        signed_in = await is_signed_in(self._engine, customer_key, token_id, generation)
        if epoch == self._epoch:
            if len(self._known) >= MAX_KEPT:
                self._known.clear()
            self._known[key] = (signed_in, now)
        return signed_in

    def start(self) -> None:
        """Listen for other replicas' sign-outs now (otherwise from the first check)."""
        self._listener.listen()

    def forget(self) -> None:
        self._epoch += 1
        self._known.clear()

    async def ended(self, customer_key: int) -> None:
        """After a sign-out or a new password committed: here now, on every other replica by broadcast."""
        self.forget()
        await self._broadcaster.publish(SESSIONS_TOPIC, str(customer_key))

    async def aclose(self) -> None:
        await self._listener.aclose()
