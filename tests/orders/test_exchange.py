"""Exchanges at the till: the return and the new sale in one operation, the difference settled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.orders.helpers import KRK, ORDER_FIELDS, PICKUP, READY, WAW, new_cart, placed, set_stock, stock_of

EXCHANGE = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $cart: ID!, $key: String!, $payment: PaymentInput!) {{
  orderExchange(orderId: $id, lines: $lines, cartId: $cart, idempotencyKey: $key, payment: $payment) {{
    returned {{ {ORDER_FIELDS} }} order {{ {ORDER_FIELDS} }} difference {{ amount }} userErrors {{ code field message }} }} }}"""


async def _collected(gql: Any, engine: Any, token_for: Any, customer: dict[str, str]) -> dict[str, Any]:
    await set_stock(engine, 1, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(1, 2)]), "bought")
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
