"""A capture, void or refund the provider does not take is retried, never lost and never made twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from commerce.payments.calls import MAX_ATTEMPTS, retry_due
from commerce.payments.models import PaymentCallRow
from tests.orders.helpers import CANCEL, PICKUP, READY, RETURN, WAW, location_id, new_cart, placed, set_stock

VARIANT = 1


async def _step(gql: Any, doc: str, order: dict[str, Any], headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = await gql.data(doc, {"id": order["id"], **extra}, headers=headers)
    result = dict(next(iter(body.values())))
    assert result["userErrors"] == [], result["userErrors"]
    return dict(result["order"])


async def _calls(engine: Any) -> list[tuple[str, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(PaymentCallRow.action, PaymentCallRow.status, PaymentCallRow.attempts).order_by(PaymentCallRow.id)
        )
        return [tuple(row) for row in rows]


async def _collected(gql: Any, engine: Any, token_for: Any) -> tuple[dict[str, Any], dict[str, str]]:
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 2)]), "k")
    await _step(gql, READY, order, staff)
    return order, staff


async def test_a_capture_the_provider_refused_at_hand_over_is_made_once_by_the_retry(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any
) -> None:
    payments = runtime.services.payments
    order, staff = await _collected(gql, engine, token_for)
    payments.unreachable = 1
    done = await _step(gql, PICKUP, order, staff)  # the goods are handed over whatever the provider says
    assert done["status"] == "COMPLETED"
    assert payments.captured == []
    assert await _calls(engine) == [("capture", "due", 1)]

    report = await retry_due(engine, payments, clock)
    assert (report.made, payments.captured) == (0, [])  # not due yet: it backs off
    clock.advance(timedelta(minutes=5))
    report = await retry_due(engine, payments, clock)
    assert (report.made, report.still_due, report.failed) == (1, 0, 0)
    assert [amount for _, amount in payments.captured] == [Decimal(order["total"]["amount"])]
    assert await _calls(engine) == [("capture", "done", 2)]
    clock.advance(timedelta(hours=2))
    assert (await retry_due(engine, payments, clock)).made == 0
    assert len(payments.captured) == 1


async def test_a_refund_whose_answer_was_lost_is_not_paid_twice(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any
) -> None:
    payments = runtime.services.payments
    order, staff = await _collected(gql, engine, token_for)
    await _step(gql, PICKUP, order, staff)
    payments.answers_lost = 1  # the provider pays the refund, but the gateway hears a timeout
    line = {"orderLineId": order["lines"][0]["id"], "quantity": 2}
    returned = await _step(gql, RETURN, order, staff, lines=[line], location=location_id(WAW))
    assert returned["status"] == "RETURNED"
    assert len(payments.refunded) == 1
    clock.advance(timedelta(minutes=5))
    assert (await retry_due(engine, payments, clock)).made == 1  # the provider knows the call by its key
    assert len(payments.refunded) == 1
    assert [call[:2] for call in await _calls(engine)] == [("capture", "done"), ("refund", "done")]


async def test_a_void_refused_every_time_fails_for_good_and_is_no_longer_tried(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any
) -> None:
    payments = runtime.services.payments
    order, _ = await _collected(gql, engine, token_for)
    payments.unreachable = MAX_ATTEMPTS + 5
    assert (await _step(gql, CANCEL, order, token_for("agent")))["status"] == "CANCELLED"
    for _ in range(MAX_ATTEMPTS - 1):  # the first attempt was the cancel's own
        clock.advance(timedelta(hours=2))
        report = await retry_due(engine, payments, clock)
    assert (report.made, report.still_due, report.failed) == (0, 0, 1)
    assert await _calls(engine) == [("void", "failed", MAX_ATTEMPTS)]
    clock.advance(timedelta(days=1))
    payments.unreachable = 0
    assert (await retry_due(engine, payments, clock)).made == 0
    assert payments.voided == []
