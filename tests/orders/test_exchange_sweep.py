"""An exchange whose attempt died with its return TAKEN is settled by `expire-reservations`, once:
refunded in full when no sale went through, closed with the unused credit paid back when one was
placed, and never both, however a retry of the exchange races the job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.orders.helpers import KRK, ORDER_FIELDS, WAW, new_cart, placed, set_stock, stock_of
from tests.orders.test_exchange import _on_lock, _paid_for_goods_kept, _until_a_transaction_waits_on_a_lock

EXCHANGE = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $cart: ID!, $key: String!, $payment: PaymentInput!) {{
  orderExchange(orderId: $id, lines: $lines, cartId: $cart, idempotencyKey: $key, payment: $payment) {{
    returned {{ {ORDER_FIELDS} }} order {{ {ORDER_FIELDS} }} difference {{ amount }}
    refunds {{ orderNumber method amount {{ amount }} atTill }} cashToHandOut {{ amount }} replayed
    userErrors {{ code field message }} }} }}"""
PAST_THE_TIMEOUT = timedelta(minutes=16)  # OMNIGATE_CHECKOUT_PENDING_TIMEOUT_SECONDS is 15 minutes


def _till(token_for: Any) -> dict[str, str]:
    return {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}


async def _bought(gql: Any, engine: Any, token_for: Any, customer: int, variant: int, payment: str) -> dict[str, Any]:
    """Two of `variant` sold at Warsaw's till to `customer` (56.99 each for variant 1, 93.99 for 3)."""
    from core.ids import to_global_id

    await set_stock(engine, variant, WAW, 5)
    till = {**token_for("staff", subject="ewa", location="ST-WAW"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(variant, 2)], customerId=to_global_id("Customer", customer))
    return await placed(gql, till, cart, "bought", method="IN_STORE", location=None, payment=payment)


async def _cart(gql: Any, engine: Any, token_for: Any, customer: int, variant: int) -> str:
    """A till cart at Kraków with one of `variant`, its last unit there."""
    from core.ids import to_global_id

    await set_stock(engine, variant, KRK, 1)
    return await new_cart(gql, _till(token_for), [(variant, 1)], customerId=to_global_id("Customer", customer))


def _swap(order: dict[str, Any], cart: str, key: str = "swap") -> dict[str, Any]:
    return {
        "id": order["id"],
        "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
        "cart": cart,
        "key": key,
        "payment": {"method": "card"},
    }


async def _dies(gql: Any, token_for: Any, variables: dict[str, Any]) -> None:
    body = await gql.execute(EXCHANGE, variables, headers=_till(token_for))
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"


def _expiry(runtime: Any) -> Any:
    from commerce.orders.service import expire_reservations
    from schema.orders import order_services_of

    services = order_services_of(runtime.services)
    return lambda: expire_reservations(services)


async def test_an_exchange_that_died_before_its_sale_is_refunded_once_by_the_expiry(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any
) -> None:
    from commerce.orders import exchange as exchanges

    order = await _bought(gql, engine, token_for, 101, 1, "card")
    cart = await _cart(gql, engine, token_for, 101, 3)

    async def process_dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(exchanges, "checkout", process_dies)
    await _dies(gql, token_for, _swap(order, cart))
    monkeypatch.undo()
    payments, expire = runtime.services.payments, _expiry(runtime)
    assert (await expire()).exchanges_refunded == 0  # not yet overdue: its attempt may still be on it
    assert payments.refunded == []
    clock.advance(PAST_THE_TIMEOUT)
    assert (await expire()).exchanges_refunded == 1
    assert payments.refunded == [(f"test_{order['number']}", Decimal("56.99"))]  # the return's refund, once
    assert (await expire()).exchanges_refunded == 0
    again = (await gql.data(EXCHANGE, _swap(order, cart), headers=_till(token_for)))["orderExchange"]
    assert [e["code"] for e in again["userErrors"]] == ["EXCHANGE_ALREADY_REFUNDED"]
    assert again["replayed"] is True  # settled by the expiry: nothing for this till to hand out
    assert payments.refunded == [(f"test_{order['number']}", Decimal("56.99"))]
    assert payments.authorized[1:] == []  # nothing sold on the refunded credit


async def test_an_exchange_whose_sale_was_left_pending_is_failed_and_refunded_in_one_expiry_run(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any
) -> None:
    """56.99 back, goods of 93.99: the sale's 37.00 is being authorized when the process dies."""
    order = await _bought(gql, engine, token_for, 102, 1, "card")
    cart = await _cart(gql, engine, token_for, 102, 3)
    payments = runtime.services.payments

    async def process_dies(request: Any) -> Any:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(payments, "authorize", process_dies)
    await _dies(gql, token_for, _swap(order, cart))
    monkeypatch.undo()
    assert await stock_of(engine, 3, KRK) == (1, 1)  # held by the PENDING sale
    clock.advance(PAST_THE_TIMEOUT)
    report = await _expiry(runtime)()
    assert (report.checkouts_failed, report.exchanges_refunded, report.exchanges_sold) == (1, 1, 0)
    assert payments.refunded == [(f"test_{order['number']}", Decimal("56.99"))]
    assert await stock_of(engine, 3, KRK) == (1, 0)
    report = await _expiry(runtime)()
    assert (report.checkouts_failed, report.exchanges_refunded) == (0, 0)
    assert payments.refunded == [(f"test_{order['number']}", Decimal("56.99"))]


@pytest.mark.parametrize("payment", ["card", "cash"])
async def test_an_exchange_that_died_after_its_sale_is_closed_paying_only_the_unused_credit(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any, payment: str
) -> None:
    """93.99 back, goods of 56.99 sold: the process dies before the return is settled. The sale stands;
    the 37.00 it left unused is paid back, never the credit the sale used; cash is reported owed."""
    from commerce.orders import service
    from commerce.orders.service import Refund
    from core.ids import from_global_id

    order = await _bought(gql, engine, token_for, 103, 3, payment)
    cart = await _cart(gql, engine, token_for, 103, 1)

    async def process_dies(*args: Any) -> Any:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(service, "settle_exchange", process_dies)
    await _dies(gql, token_for, _swap(order, cart))
    monkeypatch.undo()
    assert await stock_of(engine, 1, KRK) == (0, 0)  # sold
    payments, expire = runtime.services.payments, _expiry(runtime)
    clock.advance(PAST_THE_TIMEOUT)
    report = await expire()
    assert (report.exchanges_refunded, report.exchanges_sold) == (0, 1)
    if payment == "card":
        assert (payments.refunded, report.cash_owed) == ([(f"test_{order['number']}", Decimal("37.00"))], ())
    else:
        owed = Refund(int(from_global_id(order["id"])[1]), "cash", Decimal("37.00"))
        assert (payments.refunded, report.cash_owed) == ([], (owed,))
    refunded = list(payments.refunded)
    report = await expire()
    assert (report.exchanges_refunded, report.exchanges_sold, report.cash_owed) == (0, 0, ())
    again = (await gql.data(EXCHANGE, _swap(order, cart), headers=_till(token_for)))["orderExchange"]
    assert again["userErrors"] == [] and again["order"]["status"] == "COMPLETED"
    assert again["difference"]["amount"] == "-37.00"
    assert again["replayed"] is True  # the 37.00 was paid (or reported owed in cash) by the expiry
    assert payments.refunded == refunded


async def _retry_races_the_expiry(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any, *, first: str, on_lock: bool
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """An exchange's attempt died after taking the return (56.99 back, goods of 93.99 to sell); past the
    timeout the till retries it just as the expiry runs. `first`: whose decision on the return's row
    comes first, the expiry's "refund" or the retry's "sale" (reserved on a read the expiry made before
    it). `on_lock` (PostgreSQL): the other is already waiting on that row's lock. Answers (the original
    order, the retry's payload, the expiry's report)."""
    from commerce.orders import checkout as checkouts
    from commerce.orders import exchange as exchanges
    from commerce.orders import service

    order = await _bought(gql, engine, token_for, 104, 1, "card")
    cart = await _cart(gql, engine, token_for, 104, 3)
    checkout, hold, state, live = checkouts.checkout, checkouts._hold_exchange, service._sale_state, service._sale_live

    async def process_dies(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(exchanges, "checkout", process_dies)
    await _dies(gql, token_for, _swap(order, cart))
    monkeypatch.undo()
    clock.advance(PAST_THE_TIMEOUT)
    took, expiry_read, expiry_locked, sale_held, expiry_done = (asyncio.Event() for _ in range(5))
    payments = runtime.services.payments
    authorize = payments.authorize
    # the retry goes on to reserve once the expiry: refunded ("refund", in turn), holds the row's lock
    # ("refund", on the lock), read no sale ("sale", in turn); or at once ("sale", on the lock)
    go_on = {("refund", False): expiry_done, ("refund", True): expiry_locked, ("sale", False): expiry_read}
    retry_waits_for = go_on.get((first, on_lock))

    async def retry_checkout(services: Any, req: Any, **kw: Any) -> Any:
        took.set()  # the retry replayed the return, TAKEN
        if retry_waits_for is not None:
            await retry_waits_for.wait()
        return await checkout(services, req, **kw)

    async def expiry_reads(session: Any, sale: Any) -> Any:
        """The expiry reads no sale of the exchange: it decides to refund."""
        await (sale_held if first == "sale" and on_lock else took).wait()
        found = await state(session, sale)
        expiry_read.set()
        if first == "sale" and not on_lock:
            await sale_held.wait()  # the retry's sale is reserved (PENDING) before the expiry settles
        return found

    async def expiry_lets_the_sale_wait(session: Any, sale: Any) -> bool:
        expiry_locked.set()
        await _until_a_transaction_waits_on_a_lock(engine)  # the retry's reservation, on the return's row
        return await live(session, sale)

    async def retry_holds_and_lets_the_expiry_wait(conn: Any, return_id: int | None) -> None:
        await hold(conn, return_id)
        sale_held.set()
        await _until_a_transaction_waits_on_a_lock(engine)  # the expiry's settlement, on the return's row

    async def authorize_after_the_expiry(request: Any) -> Any:
        sale_held.set()
        await expiry_done.wait()
        return await authorize(request)

    monkeypatch.setattr(exchanges, "checkout", retry_checkout)
    monkeypatch.setattr(service, "_sale_state", expiry_reads)
    if first == "refund" and on_lock:
        monkeypatch.setattr(service, "_sale_live", expiry_lets_the_sale_wait)
    if first == "sale":
        monkeypatch.setattr(payments, "authorize", authorize_after_the_expiry)
    if first == "sale" and on_lock:
        monkeypatch.setattr(checkouts, "_hold_exchange", retry_holds_and_lets_the_expiry_wait)

    async def expiry() -> Any:
        try:
            return await _expiry(runtime)()
        finally:
            expiry_done.set()

    retry = gql.data(EXCHANGE, _swap(order, cart), headers=_till(token_for))
    answer, report = await asyncio.wait_for(asyncio.gather(retry, expiry()), 30)  # a lost wake-up: fail, not hang
    monkeypatch.undo()
    return order, answer["orderExchange"], report


@pytest.mark.parametrize("on_lock", [False, True], ids=["in-turn", "waiting-on-the-lock"])
async def test_a_retry_cannot_sell_on_a_credit_the_expiry_refunded(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any, on_lock: bool
) -> None:
    _on_lock(engine, on_lock)
    order, retry, report = await _retry_races_the_expiry(
        gql, engine, token_for, runtime, clock, monkeypatch, first="refund", on_lock=on_lock
    )
    assert [(e["code"], e["field"]) for e in retry["userErrors"]] == [("EXCHANGE_ALREADY_REFUNDED", ["idempotencyKey"])]
    assert retry["order"] is None and retry["replayed"] is True
    assert report.exchanges_refunded == 1
    payments = runtime.services.payments
    assert payments.refunded == [(f"test_{order['number']}", Decimal("56.99"))]
    assert payments.authorized[1:] == []
    paid, kept = _paid_for_goods_kept(runtime, order, None)
    assert paid == kept
    assert await stock_of(engine, 3, KRK) == (1, 0)  # the retry's hold was given back


@pytest.mark.parametrize("on_lock", [False, True], ids=["in-turn", "waiting-on-the-lock"])
async def test_the_expiry_refunds_nothing_while_a_retry_sells_on_the_credit(
    gql: Any, engine: Any, token_for: Any, runtime: Any, clock: Any, monkeypatch: Any, on_lock: bool
) -> None:
    _on_lock(engine, on_lock)
    order, retry, report = await _retry_races_the_expiry(
        gql, engine, token_for, runtime, clock, monkeypatch, first="sale", on_lock=on_lock
    )
    assert retry["userErrors"] == [] and retry["order"]["status"] == "COMPLETED"
    assert retry["replayed"] is False  # the retry settled it: its answer is the one that pays
    assert (report.exchanges_refunded, report.exchanges_sold) == (0, 0)
    payments = runtime.services.payments
    assert payments.refunded == []  # the credit went into the sale
    assert payments.captured[-1] == (f"test_{retry['order']['number']}", Decimal("37.00"))
    paid, kept = _paid_for_goods_kept(runtime, order, retry["order"])
    assert paid == kept


def test_the_expiry_command_prints_the_exchanges_it_settled_and_the_cash_owed_at_a_till() -> None:
    from commerce.orders.service import ExpiryReport, Refund
    from gateway.__main__ import _expiry_summary

    report = ExpiryReport(0, 1, 2, 1, (Refund(7, "cash", Decimal("37.00")),))
    assert _expiry_summary(report).splitlines() == [
        "released 0 overdue reservations, failed 1 abandoned checkouts, refunded 2 abandoned exchanges, "
        "closed 1 abandoned exchanges whose sale was placed",
        "cash owed at the till: 37.00 to the customer of OG-0000007",
    ]
