"""A capture, void or refund the provider does not take is retried, never lost and never made twice;
the voids of failed and abandoned checkouts too."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from commerce.orders.models import OrderRow
from commerce.orders.records import order_number
from commerce.orders.service import expire_reservations
from commerce.payments.calls import MAX_ATTEMPTS, retry_due
from commerce.payments.models import PaymentCallRow
from commerce.payments.provider import Authorization, PaymentRequest
from schema.orders import order_services_of
from tests.orders.helpers import (
    CANCEL,
    CHECKOUT,
    KRK,
    PICKUP,
    READY,
    RETURN,
    TIMEOUT_CARD,
    WAW,
    checkout,
    checkout_input,
    location_id,
    new_cart,
    placed,
    set_stock,
    stock_of,
    total_reserved,
)

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


# ---------------------------------------------------------------- voids after a failed checkout


async def _voids(engine: Any) -> list[tuple[str, str, int]]:
    """(reference, status, attempts) of every void call, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(PaymentCallRow.reference, PaymentCallRow.status, PaymentCallRow.attempts)
            .where(PaymentCallRow.action == "void")
            .order_by(PaymentCallRow.id)
        )
        return [tuple(row) for row in rows]


async def _only_order_number(engine: Any) -> str:
    async with engine.connect() as conn:
        return order_number((await conn.execute(select(OrderRow.id))).scalar_one())


async def test_a_timed_out_checkout_voids_by_the_order_number_with_a_recorded_call(
    gql: Any, engine: Any, runtime: Any
) -> None:
    payments = runtime.services.payments
    await set_stock(engine, VARIANT, WAW, 5)
    payload = await checkout(gql, {}, await new_cart(gql, {}, [(VARIANT, 2)]), "k", token=TIMEOUT_CARD)
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_TIMEOUT"]
    number = await _only_order_number(engine)  # no provider reference came back: the one it was asked under
    assert payments.voided == [number]
    assert await _voids(engine) == [(number, "done", 1)]


@pytest.mark.parametrize("trouble", ["unreachable", "answers_lost"])
async def test_a_void_the_provider_did_not_take_at_checkout_is_made_once_by_the_retry(
    gql: Any, engine: Any, runtime: Any, clock: Any, trouble: str
) -> None:
    payments = runtime.services.payments
    await set_stock(engine, VARIANT, WAW, 5)
    setattr(payments, trouble, 1)
    cart = await new_cart(gql, {}, [(VARIANT, 2)])
    payload = await checkout(gql, {}, cart, "k", token=TIMEOUT_CARD)
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_TIMEOUT"]  # the customer hears the timeout
    number = await _only_order_number(engine)
    assert await total_reserved(engine) == 0  # released whatever the provider says
    assert payments.voided == ([] if trouble == "unreachable" else [number])
    assert await _voids(engine) == [(number, "due", 1)]

    assert (await retry_due(engine, payments, clock)).made == 0  # not due yet: it backs off
    clock.advance(timedelta(minutes=5))
    report = await retry_due(engine, payments, clock)
    assert (report.made, report.still_due, report.failed) == (1, 0, 0)
    assert payments.voided == [number]  # once, even when the first was taken (the call's key)
    assert await _voids(engine) == [(number, "done", 2)]
    clock.advance(timedelta(hours=2))
    assert (await retry_due(engine, payments, clock)).made == 0
    again = await checkout(gql, {}, cart, "k", token=TIMEOUT_CARD)  # the same key: the same answer, no new void
    assert [e["code"] for e in again["userErrors"]] == ["PAYMENT_TIMEOUT"]
    assert payments.voided == [number]


async def test_an_authorization_that_came_after_the_expiry_failed_the_checkout_is_voided_by_its_reference(
    gql: Any, engine: Any, runtime: Any, clock: Any
) -> None:
    payments = runtime.services.payments
    services = order_services_of(runtime.services)  # the expiry's, with the well-behaved provider

    class Late:
        """Answers after the checkout has been PENDING past its timeout and the expiry failed it."""

        async def authorize(self, request: PaymentRequest) -> Authorization:
            clock.advance(timedelta(minutes=16))
            assert (await expire_reservations(services)).checkouts_failed == 1
            return await payments.authorize(request)

        def __getattr__(self, name: str) -> Any:
            return getattr(payments, name)

    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, {}, [(VARIANT, 2)])
    runtime.services.payments = Late()
    try:
        payload = await checkout(gql, {}, cart, "k")
    finally:
        runtime.services.payments = payments
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_TIMEOUT"]
    number = await _only_order_number(engine)
    # the expiry could only void by the order number; the checkout, told the provider's reference, voids that too
    assert [reference for reference, _, _ in await _voids(engine)] == [number, f"test_{number}"]
    assert payments.voided == [number, f"test_{number}"]
    assert await total_reserved(engine) == 0


async def test_an_abandoned_checkout_is_voided_by_the_expiry_with_a_recorded_call(
    gql: Any, engine: Any, runtime: Any, clock: Any
) -> None:
    payments = runtime.services.payments
    services = order_services_of(runtime.services)

    class Crashing:
        async def authorize(self, request: PaymentRequest) -> Authorization:
            raise RuntimeError("the process died here")

    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, {}, [(VARIANT, 1)])
    runtime.services.payments = Crashing()
    try:
        body = await gql.execute(CHECKOUT, {"input": checkout_input(cart, "k")})
    finally:
        runtime.services.payments = payments
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await total_reserved(engine) == 1  # held by the PENDING order
    number = await _only_order_number(engine)
    payments.unreachable = 1
    clock.advance(timedelta(minutes=16))
    assert (await expire_reservations(services)).checkouts_failed == 1
    assert (payments.voided, await _voids(engine)) == ([], [(number, "due", 1)])
    assert await total_reserved(engine) == 0
    clock.advance(timedelta(minutes=5))
    assert (await retry_due(engine, payments, clock)).made == 1
    assert payments.voided == [number]
    assert (await expire_reservations(services)).checkouts_failed == 0  # nothing voided twice
    assert payments.voided == [number]


async def test_a_till_capture_that_failed_voids_the_authorization_by_the_providers_reference(
    gql: Any, engine: Any, runtime: Any, token_for: Any
) -> None:
    payments = runtime.services.payments
    await set_stock(engine, VARIANT, KRK, 3)
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(VARIANT, 1)])
    payments.unreachable = 1  # authorized, then the capture does not go through
    payload = await checkout(gql, till, cart, "till", method="IN_STORE", location=None, payment="card")
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_TIMEOUT"]
    number = await _only_order_number(engine)
    assert (payments.captured, payments.voided) == ([], [f"test_{number}"])
    assert await _voids(engine) == [(f"test_{number}", "done", 1)]
    assert await stock_of(engine, VARIANT, KRK) == (3, 0)
