"""Payment calls an order change made due (capture, void, refund): never lost, made once.

The order steps record them (capture at hand-over, void on cancel, refund on return), and so does
checkout's compensation: the void of an authorization that timed out or came too late, and the
expiry's of an abandoned checkout.

A step that makes a call due records it in its own unit of work (`record`), so the call is as
durable as the order change; the provider is called after the commit (`make`), never inside a
write transaction. A call the provider did not take stays due and is retried with backoff by
`python -m gateway payments retry` (from cron, on any number of replicas: each attempt first
claims the call with a conditional update). After `MAX_ATTEMPTS` it is `failed`, for a person
to reconcile. Every call carries an idempotency key of its own (`payment-call-<id>`), so a
provider that took a call whose answer was lost does not take it twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commerce.payments.models import CallAction, CallStatus, PaymentCallRow
from commerce.payments.provider import PaymentProvider
from core.clock import Clock
from core.db import sqlite_write_queue, writer

__all__ = ["MAX_ATTEMPTS", "CallAction", "CallStatus", "PaymentCallRow", "RetryReport", "make", "record", "retry_due"]

logger = logging.getLogger("omnigate.payments")

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)  # an attempt's claim: longer than any provider call may take


@dataclass(frozen=True, slots=True)
class RetryReport:
    made: int  # calls the provider took now
    still_due: int  # refused again; retried later
    failed: int  # refused for the last time: to reconcile by hand


async def record(
    session: AsyncSession,
    *,
    order_id: int,
    action: CallAction,
    reference: str,
    amount: Decimal | None,
    now: datetime,
) -> int:
    """The call is due: written in the caller's unit of work, with the change that made it due."""
    result = await session.execute(
        insert(PaymentCallRow)
        .values(
            order_id=order_id,
            action=action,
            reference=reference,
            amount=amount,
            status=CallStatus.DUE,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(PaymentCallRow.id)
    )
    return int(result.scalar_one())


def backoff(attempts: int) -> timedelta:
    """30 s after the first refusal, doubling, at most an hour apart."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


async def make(
    engine: AsyncEngine, payments: PaymentProvider, clock: Clock, call_id: int, *, timeout: float | None = None
) -> CallStatus | None:
    """One attempt at a due call, after the commit that recorded it: DONE once the provider took it,
    DUE if it refused (tried again later), FAILED if it refused for the last time; None if the call
    was not due now (made already, being made elsewhere, or waiting for its next attempt).
    `timeout`: seconds the provider has to answer (a customer waiting on it) before the attempt
    counts as refused; the call's idempotency key covers one it took meanwhile."""
    now = clock.now()
    async with sqlite_write_queue(engine), writer(engine).begin() as conn:
        claimed = await conn.execute(
            update(PaymentCallRow)
            .where(
                PaymentCallRow.id == call_id,
                PaymentCallRow.status == CallStatus.DUE,
                PaymentCallRow.next_attempt_at <= now,
            )
            .values(attempts=PaymentCallRow.attempts + 1, next_attempt_at=now + LEASE)
            .returning(PaymentCallRow.action, PaymentCallRow.reference, PaymentCallRow.amount, PaymentCallRow.attempts)
        )
        call = claimed.one_or_none()
    if call is None:
        return None
    action, reference, amount, attempts = call
    key = f"payment-call-{call_id}"
    try:
        await asyncio.wait_for(_call(payments, action, reference, amount, key), timeout)
    except Exception as error:  # the order change stands: the call waits for its next attempt
        failed = attempts >= MAX_ATTEMPTS
        log = logger.error if failed else logger.warning
        log("payment call %s (%s, attempt %s) refused: %s", call_id, action, attempts, type(error).__name__)
        status = CallStatus.FAILED if failed else CallStatus.DUE
        await _settle(
            engine,
            call_id,
            status=status,
            next_attempt_at=clock.now() + backoff(attempts),
            last_error=type(error).__name__[:64],
        )
        return status
    await _settle(engine, call_id, status=CallStatus.DONE, done_at=clock.now(), last_error=None)
    return CallStatus.DONE


async def _call(payments: PaymentProvider, action: str, reference: str, amount: Decimal | None, key: str) -> None:
    if action == CallAction.CAPTURE:
        await payments.capture(reference, Decimal(amount or 0), idempotency_key=key)
    elif action == CallAction.VOID:
        await payments.void(reference, idempotency_key=key)
    else:
        await payments.refund(reference, Decimal(amount or 0), idempotency_key=key)


async def _settle(engine: AsyncEngine, call_id: int, **values: object) -> None:
    async with sqlite_write_queue(engine), writer(engine).begin() as conn:
        await conn.execute(update(PaymentCallRow).where(PaymentCallRow.id == call_id).values(**values))


async def retry_due(engine: AsyncEngine, payments: PaymentProvider, clock: Clock, limit: int = 500) -> RetryReport:
    """Every call due by now, oldest first (what `payments retry` runs)."""
    async with engine.connect() as conn:
        due = list(
            (
                await conn.execute(
                    select(PaymentCallRow.id)
                    .where(PaymentCallRow.status == CallStatus.DUE, PaymentCallRow.next_attempt_at <= clock.now())
                    .order_by(PaymentCallRow.id)
                    .limit(limit)
                )
            ).scalars()
        )
    outcomes = [await make(engine, payments, clock, call_id) for call_id in due]
    return RetryReport(
        made=outcomes.count(CallStatus.DONE),
        still_due=outcomes.count(CallStatus.DUE),
        failed=outcomes.count(CallStatus.FAILED),
    )
