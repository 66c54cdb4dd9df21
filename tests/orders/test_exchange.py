"""Exchanges at the till: the return and the new sale in one operation, the difference settled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.orders.helpers import KRK, ORDER_FIELDS, PICKUP, READY, WAW, new_cart, placed, set_stock, stock_of

EXCHANGE = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $cart: ID!, $key: String!, $payment: PaymentInput!) {{
  orderExchange(orderId: $id, lines: $lines, cartId: $cart, idempotencyKey: $key, payment: $payment) {{
    returned {{ {ORDER_FIELDS} }} order {{ {ORDER_FIELDS} }} difference {{ amount }} replayed
    userErrors {{ code field message }} }} }}"""


async def _collected(
    gql: Any, engine: Any, token_for: Any, customer: dict[str, str], key: str = "bought"
) -> dict[str, Any]:
    await set_stock(engine, 1, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(1, 2)]), key)
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    await gql.data(READY, {"id": order["id"]}, headers=staff)
    return dict((await gql.data(PICKUP, {"id": order["id"]}, headers=staff))["orderConfirmPickup"]["order"])


async def test_an_exchange_in_another_store_returns_sells_and_settles_the_difference(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    from commerce.customers import service as customers
    from core.ids import to_global_id

    services = runtime.services
    registration = customers.Registration(email="ex@example.com", password="password-ex", first_name="E", last_name="X")
    key = await customers.register(services.engine, services.vault, services.clock, registration)
    customer = token_for("customer", subject=str(key))
    order = await _collected(gql, engine, token_for, customer)
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", key))
    result = (
        await gql.data(
            EXCHANGE,
            {
                "id": order["id"],
                "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
                "cart": cart,
                "key": "swap-1",
                "payment": {"method": "card"},
            },
            headers=till,
        )
    )["orderExchange"]
    assert result["userErrors"] == []
    assert result["returned"]["status"] == "PARTIALLY_RETURNED"
    sale = result["order"]
    assert sale["status"] == "COMPLETED" and sale["fulfillmentMethod"] == "IN_STORE"
    credit = Decimal(result["returned"]["payment"]["refunded"]["amount"])
    difference = Decimal(result["difference"]["amount"])
    assert difference == Decimal(sale["total"]["amount"]) - credit
    payments = runtime.services.payments
    if difference > 0:  # only the difference is charged
        assert payments.authorized[-1].amount == difference
    else:  # only the excess is paid back
        assert payments.refunded[-1][1] == -difference
    assert (await stock_of(engine, 1, KRK))[0] >= 1  # the returned unit is on Kraków's shelf
    assert await stock_of(engine, 3, KRK) == (3, 0)
    history = await gql.data("{ me { orders { edges { node { id } } } } }", headers=customer)
    assert [e["node"]["id"] for e in history["me"]["orders"]["edges"]] == [sale["id"], order["id"]]


async def test_an_exchange_whose_sale_fails_still_refunds_the_return_in_full(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    customer = token_for("customer", subject="78")
    order = await _collected(gql, engine, token_for, customer)
    await set_stock(engine, 3, KRK, 1)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId="Q3VzdG9tZXI6Nzg")
    await set_stock(engine, 3, KRK, 0)  # the last one went meanwhile
    result = (
        await gql.data(
            EXCHANGE,
            {
                "id": order["id"],
                "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
                "cart": cart,
                "key": "swap-2",
                "payment": {"method": "card"},
            },
            headers=till,
        )
    )["orderExchange"]
    assert [e["code"] for e in result["userErrors"]] == ["INSUFFICIENT_STOCK"]
    assert result["order"] is None and result["returned"]["status"] == "PARTIALLY_RETURNED"
    refunded = Decimal(result["returned"]["payment"]["refunded"]["amount"])
    assert runtime.services.payments.refunded[-1][1] == refunded


async def test_exchanges_are_for_staff_at_a_till(gql: Any, engine: Any, token_for: Any) -> None:
    customer = token_for("customer", subject="79")
    order = await _collected(gql, engine, token_for, customer)
    online = token_for("staff", subject="jan", location="ST-KRK")  # not through the store channel
    body = await gql.execute(
        EXCHANGE,
        {
            "id": order["id"],
            "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
            "cart": "Q2FydDp4",
            "key": "k",
            "payment": {"method": "card"},
        },
        headers=online,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_exchange_credits_only_its_own_return_not_another_tills_meanwhile(
    gql: Any, engine: Any, token_for: Any, runtime: Any, monkeypatch: Any
) -> None:
    from commerce.catalog import service as catalog
    from commerce.orders import service
    from commerce.pricing.money import quantize
    from core.ids import from_global_id, to_global_id
    from schema.orders import order_services_of

    order = await _collected(gql, engine, token_for, token_for("customer", subject="81"))
    line = order["lines"][0]
    line_total = Decimal(str(line["total"]["amount"]))
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 81))
    locations_by_ids = catalog.locations_by_ids
    other_till_done: list[bool] = []

    async def another_till_returns_first(*args: Any, **kwargs: Any) -> Any:
        """As the exchange begins, another till takes a plain return of the order's other unit."""
        if not other_till_done:
            other_till_done.append(True)
            back = service.ReturnLine(int(from_global_id(line["id"])[1]), 1)
            await service.return_lines(
                order_services_of(runtime.services),
                int(from_global_id(order["id"])[1]),
                [back],
                WAW,
                actor="other-till",
            )
        return await locations_by_ids(*args, **kwargs)

    monkeypatch.setattr(catalog, "locations_by_ids", another_till_returns_first)
    variables = {
        "id": order["id"],
        "lines": [{"orderLineId": line["id"], "quantity": 1}],
        "cart": cart,
        "key": "swap-race",
        "payment": {"method": "card"},
    }
    result = (await gql.data(EXCHANGE, variables, headers=till))["orderExchange"]
    monkeypatch.undo()
    assert result["userErrors"] == [] and other_till_done
    assert Decimal(str(result["returned"]["payment"]["refunded"]["amount"])) == line_total  # both units back
    credit = Decimal(str(result["order"]["total"]["amount"])) - Decimal(str(result["difference"]["amount"]))
    assert credit == line_total - quantize(line_total / 2, "PLN")  # its own unit: the rest of the line


def _swap(order: dict[str, Any], cart: str, key: str) -> dict[str, Any]:
    return {
        "id": order["id"],
        "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
        "cart": cart,
        "key": key,
        "payment": {"method": "card"},
    }


async def test_a_retried_exchange_replays_it_taking_the_return_and_paying_once(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    from core.ids import to_global_id

    order = await _collected(gql, engine, token_for, token_for("customer", subject="82"))
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 82))
    first = (await gql.data(EXCHANGE, _swap(order, cart, "swap-retry"), headers=till))["orderExchange"]
    assert first["userErrors"] == []
    payments = runtime.services.payments
    shelf, calls = await stock_of(engine, 1, KRK), (list(payments.authorized), list(payments.refunded))
    # the answer was lost: the till sends the very same mutation again
    again = (await gql.data(EXCHANGE, _swap(order, cart, "swap-retry"), headers=till))["orderExchange"]
    assert again["userErrors"] == []
    assert again["returned"]["lines"][0]["quantityReturned"] == 1
    assert again["returned"]["payment"] == first["returned"]["payment"]  # refunded once
    assert again["order"]["id"] == first["order"]["id"] and again["difference"] == first["difference"]
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert await stock_of(engine, 1, KRK) == shelf  # restocked once
    assert (list(payments.authorized), list(payments.refunded)) == calls  # nothing charged or paid again


async def test_racing_retries_of_an_exchange_take_the_return_once(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    import asyncio

    from core.ids import to_global_id

    order = await _collected(gql, engine, token_for, token_for("customer", subject="83"))
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 83))
    shelf, payments = (await stock_of(engine, 1, KRK))[0], runtime.services.payments
    calls = len(payments.authorized) + len(payments.refunded)
    answers = await asyncio.gather(
        *(gql.data(EXCHANGE, _swap(order, cart, "swap-race"), headers=till) for _ in range(2))
    )
    done = [a["orderExchange"] for a in answers]
    assert [d["userErrors"] for d in done] == [[], []]
    assert sorted(d["replayed"] for d in done) == [False, True]  # only the attempt that settled it pays out
    assert {d["returned"]["lines"][0]["quantityReturned"] for d in done} == {1}
    assert done[0]["order"]["id"] == done[1]["order"]["id"]
    assert (await stock_of(engine, 1, KRK))[0] == shelf + 1
    assert len(payments.authorized) + len(payments.refunded) == calls + 1  # the difference settled once, one way


async def test_a_retried_exchange_whose_sale_failed_is_refused_not_refunded_again(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    order = await _collected(gql, engine, token_for, token_for("customer", subject="84"))
    await set_stock(engine, 3, KRK, 1)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId="Q3VzdG9tZXI6ODQ")
    await set_stock(engine, 3, KRK, 0)
    failed = (await gql.data(EXCHANGE, _swap(order, cart, "swap-fail"), headers=till))["orderExchange"]
    assert [e["code"] for e in failed["userErrors"]] == ["INSUFFICIENT_STOCK"]
    payments = runtime.services.payments
    calls, shelf = (list(payments.authorized), list(payments.refunded)), await stock_of(engine, 1, KRK)
    await set_stock(engine, 3, KRK, 1)  # the goods are found: the till retries the exchange
    again = (await gql.data(EXCHANGE, _swap(order, cart, "swap-fail"), headers=till))["orderExchange"]
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("EXCHANGE_ALREADY_REFUNDED", ["idempotencyKey"])]
    assert again["order"] is None and again["returned"]["lines"][0]["quantityReturned"] == 1
    assert (list(payments.authorized), list(payments.refunded)) == calls  # no credit given, no second refund
    assert await stock_of(engine, 1, KRK) == shelf and await stock_of(engine, 3, KRK) == (1, 0)


async def test_the_same_key_with_another_cart_is_another_exchange_funded_by_its_own_return(
    gql: Any, engine: Any, token_for: Any
) -> None:
    """Checkout scopes a key to its cart: a new cart with an old key is a new exchange, which must
    take a return of its own, never spend the credit of the first one again."""
    order = await _collected(gql, engine, token_for, {})
    await set_stock(engine, 3, KRK, 10)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    answers = []
    for _ in range(3):
        cart = await new_cart(gql, till, [(3, 1)])
        answers.append((await gql.data(EXCHANGE, _swap(order, cart, "swap"), headers=till))["orderExchange"])
    first, second, third = answers
    assert first["userErrors"] == [] and second["userErrors"] == []
    assert second["returned"]["lines"][0]["quantityReturned"] == 2  # its own unit came back
    assert second["order"]["id"] != first["order"]["id"]
    assert [e["code"] for e in third["userErrors"]] == ["INVALID_TRANSITION"]  # all back: nothing to fund it
    assert third["order"] is None


async def _sale_returned(gql: Any, engine: Any, token_for: Any, runtime: Any, bought: int, taken: int) -> Any:
    """A collected order of variant `bought` x2, one unit exchanged at KRK for variant `taken`, then
    that sale returned: (the original order, the sale, the provider's refunds by reference)."""
    from core.ids import to_global_id
    from tests.orders.helpers import RETURN, location_id

    customer = token_for("customer", subject="85")
    await set_stock(engine, bought, WAW, 5)
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    order = await placed(gql, customer, await new_cart(gql, customer, [(bought, 2)]), "bought")
    await gql.data(READY, {"id": order["id"]}, headers=staff)
    order = (await gql.data(PICKUP, {"id": order["id"]}, headers=staff))["orderConfirmPickup"]["order"]
    await set_stock(engine, taken, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(taken, 1)], customerId=to_global_id("Customer", 85))
    swapped = (await gql.data(EXCHANGE, _swap(order, cart, "swap-back"), headers=till))["orderExchange"]
    assert swapped["userErrors"] == []
    sale, payments = swapped["order"], runtime.services.payments
    before = len(payments.refunded)
    variables = {"id": sale["id"], "lines": [{"orderLineId": sale["lines"][0]["id"], "quantity": 1}]}
    back = await gql.data(RETURN, {**variables, "location": location_id(KRK)}, headers=till)
    assert back["orderReturnLines"]["userErrors"] == []
    refunds: dict[str, Decimal] = {}
    for reference, amount in payments.refunded[before:]:
        refunds[reference] = refunds.get(reference, Decimal(0)) + amount
    return order, sale, refunds


async def test_returning_an_exchanges_new_goods_pays_each_payment_back_what_it_paid(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """56.99 of goods back for 93.99: the card at the till paid 37.00, the first order's card 56.99."""
    order, sale, refunds = await _sale_returned(gql, engine, token_for, runtime, bought=1, taken=3)
    assert refunds == {f"test_{sale['number']}": Decimal("37.00"), f"test_{order['number']}": Decimal("56.99")}


async def test_returning_new_goods_the_credit_paid_for_pays_the_first_order_back(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """93.99 of goods back for 56.99: the credit paid it all (37.00 went back at the exchange)."""
    order, sale, refunds = await _sale_returned(gql, engine, token_for, runtime, bought=3, taken=1)
    assert refunds == {f"test_{order['number']}": Decimal("56.99")}
    assert Decimal(sale["total"]["amount"]) == Decimal("56.99")


async def test_exchanging_goods_bought_in_an_exchange_pays_both_earlier_payments_back(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """56.99 of goods swapped for 93.99 (37.00 on a second card), then swapped again: the first
    card gets its 56.99, the second its 37.00, and the third sale is charged in full."""
    from core.ids import to_global_id

    order = await _collected(gql, engine, token_for, token_for("customer", subject="86"))
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    first_cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 86))
    first = (await gql.data(EXCHANGE, _swap(order, first_cart, "swap-1"), headers=till))["orderExchange"]
    assert first["userErrors"] == [] and first["difference"]["amount"] == "37.00"
    sale, payments = first["order"], runtime.services.payments
    before = len(payments.refunded)
    second_cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 86))
    second = (await gql.data(EXCHANGE, _swap(sale, second_cart, "swap-2"), headers=till))["orderExchange"]
    assert second["userErrors"] == [] and second["difference"]["amount"] == "93.99"  # nothing netted
    assert sorted(payments.refunded[before:]) == sorted(
        [(f"test_{sale['number']}", Decimal("37.00")), (f"test_{order['number']}", Decimal("56.99"))]
    )


async def _until_a_transaction_waits_on_a_lock(engine: Any) -> None:
    """PostgreSQL: returns once another transaction waits on a lock (polled on a connection of its own)."""
    import asyncio

    from sqlalchemy import text

    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(1000):
        async with engine.connect() as conn:
            if (await conn.execute(waiting)).scalar_one():
                return
        await asyncio.sleep(0.005)
    raise AssertionError("no transaction came to wait on the lock")


async def _retry_races_a_failed_sale(
    gql: Any, engine: Any, token_for: Any, runtime: Any, monkeypatch: Any, *, first: str, on_lock: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The first attempt's sale fails (out of stock: no order is left, the key is free) and, before it
    settles, a retry with the same key and cart replays the return while it is still TAKEN; the goods
    are found and the retry sells the cart. `first` says which decision comes first: the failed
    attempt's "refund", or the retry's "sale" (reserved, its payment not yet authorized). `on_lock`
    (PostgreSQL): the other one is already waiting on the return's row lock when it is taken.
    Answers (the original order, the first attempt's payload, the retry's)."""
    import asyncio

    from commerce.orders import checkout as checkouts
    from commerce.orders import exchange as exchanges
    from commerce.orders import service
    from core.ids import to_global_id

    order = await _collected(gql, engine, token_for, token_for("customer", subject="87"))
    await set_stock(engine, 3, KRK, 1)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 87))
    await set_stock(engine, 3, KRK, 0)
    first_failed, retry_went_on, first_decided = asyncio.Event(), asyncio.Event(), asyncio.Event()
    checkout, hold, settle, live = (
        checkouts.checkout,
        checkouts._hold_exchange,
        service.settle_exchange,
        service._sale_live,
    )
    payments, sales = runtime.services.payments, []
    authorize = payments.authorize

    async def interleaved_checkout(services: Any, req: Any, **kw: Any) -> Any:
        sales.append(req)
        if len(sales) == 1:  # the first attempt: its sale fails, and it waits for the retry to go on
            try:
                return await checkout(services, req, **kw)
            finally:
                first_failed.set()
                await retry_went_on.wait()
        if first == "refund":
            retry_went_on.set()
            await first_decided.wait()
        await set_stock(engine, 3, KRK, 1)  # the goods are found
        return await checkout(services, req, **kw)

    async def hold_then_let_the_refund_wait(conn: Any, return_id: int | None) -> None:
        await hold(conn, return_id)
        if len(sales) == 2:  # the retry's: the first attempt's refund comes to wait on the return's row
            retry_went_on.set()
            await _until_a_transaction_waits_on_a_lock(engine)

    async def authorize_once_the_first_decided(request: Any) -> Any:
        retry_went_on.set()  # the retry's sale is reserved (PENDING), its payment not yet taken
        await first_decided.wait()
        return await authorize(request)

    async def decide_then_let_the_sale_wait(session: Any, sale: Any) -> bool:
        first_decided.set()  # the return's row is locked: the retry's reservation comes to wait on it
        await _until_a_transaction_waits_on_a_lock(engine)
        return await live(session, sale)

    async def settle_and_tell(*args: Any) -> Any:
        try:
            return await settle(*args)
        finally:
            first_decided.set()

    monkeypatch.setattr(exchanges, "checkout", interleaved_checkout)
    monkeypatch.setattr(service, "settle_exchange", settle_and_tell)
    if first == "sale":
        monkeypatch.setattr(payments, "authorize", authorize_once_the_first_decided)
    if on_lock and first == "sale":
        monkeypatch.setattr(checkouts, "_hold_exchange", hold_then_let_the_refund_wait)
    if on_lock and first == "refund":
        monkeypatch.setattr(service, "_sale_live", decide_then_let_the_sale_wait)

    async def retry() -> dict[str, Any]:
        await first_failed.wait()
        return await gql.data(EXCHANGE, _swap(order, cart, "swap-twice"), headers=till)

    answers = await asyncio.gather(gql.data(EXCHANGE, _swap(order, cart, "swap-twice"), headers=till), retry())
    monkeypatch.undo()
    assert len(sales) == 2
    return order, answers[0]["orderExchange"], answers[1]["orderExchange"]


def _paid_for_goods_kept(runtime: Any, order: dict[str, Any], sale: dict[str, Any] | None) -> tuple[Decimal, Decimal]:
    """(what the customer paid net, what the goods they kept cost): one unit of the order's line,
    and the new sale when there is one. Equal when nothing was charged or refunded wrongly."""
    payments = runtime.services.payments
    paid = sum((a for _, a in payments.captured), Decimal(0)) - sum((a for _, a in payments.refunded), Decimal(0))
    kept = Decimal(order["lines"][0]["unitPrice"]["amount"])
    return paid, kept + (Decimal(sale["total"]["amount"]) if sale else Decimal(0))


def _on_lock(engine: Any, on_lock: bool) -> None:
    if on_lock and engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite's writers take turns (the sequential case covers it)")


@pytest.mark.parametrize("on_lock", [False, True], ids=["in-turn", "waiting-on-the-lock"])
async def test_a_retry_cannot_sell_on_a_credit_the_failed_first_attempt_refunded(
    gql: Any, engine: Any, token_for: Any, runtime: Any, monkeypatch: Any, on_lock: bool
) -> None:
    _on_lock(engine, on_lock)
    order, first, retry = await _retry_races_a_failed_sale(
        gql, engine, token_for, runtime, monkeypatch, first="refund", on_lock=on_lock
    )
    assert [e["code"] for e in first["userErrors"]] == ["INSUFFICIENT_STOCK"]
    assert [(e["code"], e["field"]) for e in retry["userErrors"]] == [("EXCHANGE_ALREADY_REFUNDED", ["idempotencyKey"])]
    assert retry["order"] is None and retry["returned"]["lines"][0]["quantityReturned"] == 1
    assert (first["replayed"], retry["replayed"]) == (False, True)  # the refund is told as paid out once
    payments = runtime.services.payments
    unit = Decimal(order["lines"][0]["unitPrice"]["amount"])
    assert payments.refunded == [(f"test_{order['number']}", unit)]  # the return refunded once, in full
    assert payments.authorized[1:] == []  # nothing charged for a sale
    paid, kept = _paid_for_goods_kept(runtime, order, None)
    assert paid == kept
    assert await stock_of(engine, 3, KRK) == (1, 0)  # the retry's hold was given back


@pytest.mark.parametrize("on_lock", [False, True], ids=["in-turn", "waiting-on-the-lock"])
async def test_a_failed_attempt_refunds_nothing_while_a_retry_sells_on_its_credit(
    gql: Any, engine: Any, token_for: Any, runtime: Any, monkeypatch: Any, on_lock: bool
) -> None:
    _on_lock(engine, on_lock)
    order, first, retry = await _retry_races_a_failed_sale(
        gql, engine, token_for, runtime, monkeypatch, first="sale", on_lock=on_lock
    )
    assert [(e["code"], e["field"]) for e in first["userErrors"]] == [("CHECKOUT_IN_PROGRESS", ["idempotencyKey"])]
    assert retry["userErrors"] == [] and retry["order"]["status"] == "COMPLETED"
    payments = runtime.services.payments
    assert payments.refunded == []  # the credit went into the sale
    assert payments.captured[-1] == (f"test_{retry['order']['number']}", Decimal(retry["difference"]["amount"]))
    paid, kept = _paid_for_goods_kept(runtime, order, retry["order"])
    assert paid == kept


async def test_an_exchange_key_reused_for_another_order_is_refused_and_nothing_is_taken_back(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """The cart and key of a finished exchange, sent with another order: its goods must not be taken
    back and their refund swallowed by replaying the first exchange's sale (paid already)."""
    from core.ids import to_global_id

    customer = token_for("customer", subject="88")
    first_order = await _collected(gql, engine, token_for, customer)
    second_order = await _collected(gql, engine, token_for, customer, "bought-again")
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 88))
    done = (await gql.data(EXCHANGE, _swap(first_order, cart, "swap-once"), headers=till))["orderExchange"]
    assert done["userErrors"] == []
    payments = runtime.services.payments
    shelf, calls = await stock_of(engine, 1, KRK), (list(payments.authorized), list(payments.refunded))
    again = (await gql.data(EXCHANGE, _swap(second_order, cart, "swap-once"), headers=till))["orderExchange"]
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("IDEMPOTENCY_KEY_REUSED", ["idempotencyKey"])]
    assert again["order"] is None and again["returned"] is None
    assert await stock_of(engine, 1, KRK) == shelf  # nothing restocked
    assert (list(payments.authorized), list(payments.refunded)) == calls
    order = await gql.data(
        f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}", {"id": second_order["id"]}, headers=till
    )
    assert order["order"]["lines"][0]["quantityReturned"] == 0 and order["order"]["status"] == "COMPLETED"


async def test_an_exchange_with_the_cart_and_key_of_an_earlier_sale_is_refused_and_nothing_is_taken_back(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """The till sold the cart with a key, then sends an exchange with that cart and key: the earlier
    sale (paid in full) must not be replayed as the exchange's, swallowing the return's refund."""
    from core.ids import to_global_id

    order = await _collected(gql, engine, token_for, token_for("customer", subject="89"))
    await set_stock(engine, 3, KRK, 4)
    till = {**token_for("staff", subject="jan", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 1)], customerId=to_global_id("Customer", 89))
    await placed(gql, till, cart, "till-sale", method="IN_STORE", location=None, payment="card")
    payments = runtime.services.payments
    shelf, calls = await stock_of(engine, 1, KRK), (list(payments.authorized), list(payments.refunded))
    swapped = (await gql.data(EXCHANGE, _swap(order, cart, "till-sale"), headers=till))["orderExchange"]
    assert [(e["code"], e["field"]) for e in swapped["userErrors"]] == [("IDEMPOTENCY_KEY_REUSED", ["idempotencyKey"])]
    assert swapped["order"] is None and swapped["returned"] is None
    assert await stock_of(engine, 1, KRK) == shelf
    assert (list(payments.authorized), list(payments.refunded)) == calls
