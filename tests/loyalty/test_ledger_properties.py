"""The ledger's invariants under random sequences of earn, redeem, return, cancel, adjust and expire."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.loyalty import errors
from commerce.loyalty import service as loyalty
from commerce.loyalty.models import LoyaltyTransactionRow
from core.clock import FrozenClock
from core.db import writer

_customers = itertools.count(900_000)

ORDERS = st.integers(min_value=1, max_value=4)
OPS = st.one_of(
    st.tuples(st.just("earn"), ORDERS, st.decimals(min_value=0, max_value=5000, places=2)),
    st.tuples(st.just("redeem"), ORDERS, st.integers(min_value=0, max_value=6000)),
    st.tuples(st.just("return"), ORDERS, st.decimals(min_value=0, max_value=1, places=2)),
    st.tuples(st.just("cancel"), ORDERS, st.just(0)),
    st.tuples(st.just("adjust"), st.just(0), st.integers(min_value=-3000, max_value=3000)),
    st.tuples(st.just("expire"), st.just(0), st.integers(min_value=0, max_value=30)),
)


async def _check(engine: AsyncEngine, customer: int) -> None:
    balance, ledger, lots = await loyalty.ledger_sum(engine, customer)
    assert balance == ledger == lots, (balance, ledger, lots)
    assert balance >= 0
    stmt = (
        select(LoyaltyTransactionRow.order_key, func.count())
        .where(LoyaltyTransactionRow.customer_key == customer, LoyaltyTransactionRow.kind == "EARN")
        .group_by(LoyaltyTransactionRow.order_key)
    )
    async with engine.connect() as conn:
        assert all(count == 1 for _, count in await conn.execute(stmt))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(OPS, min_size=1, max_size=14))
async def test_balance_is_the_ledger_sum_never_negative_and_each_order_earns_once(
    engine: AsyncEngine, clock: FrozenClock, ops: list[tuple[str, int, object]]
) -> None:
    customer = next(_customers)
    at = clock.now()
    cancelled: set[int] = set()
    for op, order, value in ops:
        at += timedelta(days=20)
        key = f"P{customer}-{order}"
        async with writer(engine).begin() as conn:
            if op == "earn" and order not in cancelled:  # a cancelled order earns nothing
                assert isinstance(value, Decimal)
                await loyalty.earn_for_order(conn, customer, key, "web", value, at)
            elif op == "redeem":
                assert isinstance(value, int)
                with contextlib.suppress(errors.InsufficientPoints):  # more than the balance: refused, nothing moves
                    await loyalty.hold_for_checkout(conn, customer, key, value, "web", at)
            elif op == "return":
                assert isinstance(value, Decimal)
                await loyalty.reverse_for_return(conn, customer, key, f"R{at.timestamp()}", value, Decimal(1), at)
            elif op == "cancel":
                cancelled.add(order)
                await loyalty.release_hold(conn, customer, key, at)
            elif op == "adjust" and value != 0:
                assert isinstance(value, int)
                with contextlib.suppress(errors.InsufficientPoints):
                    await loyalty.adjust(conn, customer, value, "property test", "agent:test", at)
        if op == "expire":
            assert isinstance(value, int)
            at += timedelta(days=30 * value)
            await loyalty.expire_points(engine, at)
            assert await loyalty.expire_points(engine, at) == 0  # idempotent
        await _check(engine, customer)
