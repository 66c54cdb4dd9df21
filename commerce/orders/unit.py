"""What the orders context needs from the outside, and its one way to open a unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from commerce.cart.service import CartRules
from commerce.payments.provider import PaymentProvider
from commerce.pricing.cache import PricingCache
from core.clock import Clock
from core.db import sqlite_write_queue
from vault.audit import AuditEntry, AuditLog
from vault.service import Vault

__all__ = ["OrderServices", "audit_action", "unit_of_work"]


@dataclass(frozen=True, slots=True, eq=False)
class OrderServices:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]  # bound to the writer engine (BEGIN IMMEDIATE on SQLite)
    vault: Vault
    clock: Clock
    payments: PaymentProvider
    cart_rules: CartRules
    reservation_ttl: timedelta  # RESERVE_AND_COLLECT holds stock this long
    payment_timeout: float = 15.0  # seconds the provider has to answer an authorization
    pending_timeout: timedelta = timedelta(minutes=15)  # a checkout stuck PENDING longer is failed by expiry
    replay_wait: float = 10.0  # seconds a retry waits for the first attempt's payment to settle
    audit: AuditLog | None = None  # where an operator's action on an order is recorded, in its transaction
    pricing_cache: PricingCache | None = None  # checkout prices as the cart showed (None: read each time)
    pickup_hold: timedelta = timedelta(days=7)  # a ready click & collect order waits this long (its email says)


@asynccontextmanager
async def unit_of_work(services: OrderServices) -> AsyncIterator[AsyncSession]:
    """One transaction: the order change, its stock movements and its outbox events commit together."""
    async with sqlite_write_queue(services.engine), services.sessions() as session, session.begin():
        yield session


async def audit_action(
    services: OrderServices, session: AsyncSession, entry: AuditEntry | None, customer_key: int | None
) -> None:
    """Record an operator's action on a customer's order in the action's own transaction: the
    change and its audit record commit together or not at all. (A guest order names no person.)"""
    if entry is None or services.audit is None or customer_key is None:
        return
    await services.audit.append_in(await session.connection(), [replace(entry, subject=str(customer_key))])
