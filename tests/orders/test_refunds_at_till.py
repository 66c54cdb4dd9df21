"""Refunds by payment: a share owed to a payment taken at a till (cash) is in no provider's hands, so
the till hands it out and the answer says how much, apart from what the provider pays back to cards."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.orders.helpers import KRK, ORDER_FIELDS, WAW, location_id, new_cart, placed, set_stock

REFUNDS = "refunds { orderNumber method amount { amount currency } atTill } cashToHandOut { amount currency }"
EXCHANGE = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $cart: ID!, $key: String!, $payment: PaymentInput!) {{
  orderExchange(orderId: $id, lines: $lines, cartId: $cart, idempotencyKey: $key, payment: $payment) {{
    returned {{ {ORDER_FIELDS} }} order {{ {ORDER_FIELDS} }} difference {{ amount }} {REFUNDS} replayed
    userErrors {{ code field message }} }} }}"""
RETURN = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $location: ID!) {{
  orderReturnLines(orderId: $id, lines: $lines, locationId: $location) {{
    order {{ {ORDER_FIELDS} }} {REFUNDS} userErrors {{ code field message }} }} }}"""
PLN = "PLN"


def _till(token_for: Any, store: str) -> dict[str, str]:
    staff = {"ST-WAW": "ewa", "ST-KRK": "jan"}[store]
    return {**token_for("staff", subject=staff, location=store), "X-Channel": "store"}


async def _sold_for_cash(gql: Any, engine: Any, token_for: Any, customer: int, lines: list[tuple[int, int]]) -> Any:
    """An IN_STORE sale paid in cash at Warsaw's till, to `customer`."""
    from core.ids import to_global_id

    for variant, _ in lines:
        await set_stock(engine, variant, WAW, 5)
    till = _till(token_for, "ST-WAW")
    cart = await new_cart(gql, till, lines, customerId=to_global_id("Customer", customer))
    order = await placed(gql, till, cart, "cash-sale", method="IN_STORE", location=None, payment="cash")
    assert order["payment"]["method"] == "cash" and order["status"] == "COMPLETED"
    return order


async def _exchange(
    gql: Any, engine: Any, token_for: Any, order: Any, customer: int, variant: int, key: str, *, sold_out: bool = False
) -> Any:
    """One unit of the order's first line exchanged at Kraków's till for one of `variant`, by card
    (`sold_out`: its last unit goes once it is in the cart)."""
    from core.ids import to_global_id

    till = _till(token_for, "ST-KRK")
    cart = await new_cart(gql, till, [(variant, 1)], customerId=to_global_id("Customer", customer))
    if sold_out:
        await set_stock(engine, variant, KRK, 0)
    variables = {
        "id": order["id"],
        "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
        "cart": cart,
        "key": key,
        "payment": {"method": "card"},
    }
    return variables, (await gql.data(EXCHANGE, variables, headers=till))["orderExchange"]


def _share(order: Any, method: str, amount: str, at_till: bool) -> dict[str, Any]:
    return {
        "orderNumber": order["number"],
        "method": method,
        "amount": {"amount": amount, "currency": PLN},
        "atTill": at_till,
    }


async def test_returning_what_an_exchange_sold_on_a_cash_credit_tells_the_till_the_cash_to_hand_out(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """56.99 paid in cash, exchanged for goods of 93.99 (37.00 by card), those returned: the card gets
    37.00 from the provider, and the till hands out 56.99 in cash."""
    original = await _sold_for_cash(gql, engine, token_for, 91, [(1, 2)])
    await set_stock(engine, 3, KRK, 4)
    _, swapped = await _exchange(gql, engine, token_for, original, 91, 3, "swap")
    assert swapped["userErrors"] == [] and swapped["difference"]["amount"] == "37.00"
    assert swapped["refunds"] == [] and swapped["cashToHandOut"] == {"amount": "0.00", "currency": PLN}
    sale, payments = swapped["order"], runtime.services.payments
    variables = {"id": sale["id"], "lines": [{"orderLineId": sale["lines"][0]["id"], "quantity": 1}]}
    back = await gql.data(RETURN, {**variables, "location": location_id(KRK)}, headers=_till(token_for, "ST-KRK"))
    payload = back["orderReturnLines"]
    assert payload["userErrors"] == []
    assert payload["refunds"] == [_share(sale, "card", "37.00", False), _share(original, "cash", "56.99", True)]
    assert payload["cashToHandOut"] == {"amount": "56.99", "currency": PLN}
    assert payments.refunded == [(f"test_{sale['number']}", Decimal("37.00"))]  # the cash is not the provider's
    assert Decimal(payload["order"]["payment"]["refunded"]["amount"]) == Decimal("93.99")


async def test_an_exchange_for_cheaper_goods_hands_the_excess_of_a_cash_payment_out_and_a_retry_says_so_again(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """93.99 paid in cash, exchanged for goods of 56.99: 37.00 in cash from the till."""
    original = await _sold_for_cash(gql, engine, token_for, 92, [(3, 1)])
    await set_stock(engine, 1, KRK, 4)
    variables, swapped = await _exchange(gql, engine, token_for, original, 92, 1, "swap-down")
    assert swapped["userErrors"] == [] and swapped["difference"]["amount"] == "-37.00"
    assert swapped["refunds"] == [_share(original, "cash", "37.00", True)]
    assert swapped["cashToHandOut"] == {"amount": "37.00", "currency": PLN}
    assert runtime.services.payments.refunded == [] and swapped["replayed"] is False
    # the answer was lost: the retry answers the same, so the till learns what it owes (paid once)
    again = (await gql.data(EXCHANGE, variables, headers=_till(token_for, "ST-KRK")))["orderExchange"]
    assert again["order"]["id"] == swapped["order"]["id"]
    assert (again["refunds"], again["cashToHandOut"]) == (swapped["refunds"], swapped["cashToHandOut"])
    assert again["replayed"] is True  # ... and that it was handed out already, if it was this till that heard


async def test_an_exchange_whose_sale_fails_tells_the_till_to_hand_the_whole_cash_refund_out(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    original = await _sold_for_cash(gql, engine, token_for, 93, [(1, 2)])
    await set_stock(engine, 3, KRK, 1)
    variables, failed = await _exchange(gql, engine, token_for, original, 93, 3, "swap-none", sold_out=True)
    assert [e["code"] for e in failed["userErrors"]] == ["INSUFFICIENT_STOCK"]
    assert failed["order"] is None and failed["returned"]["lines"][0]["quantityReturned"] == 1
    assert failed["refunds"] == [_share(original, "cash", "56.99", True)]
    assert failed["cashToHandOut"] == {"amount": "56.99", "currency": PLN}
    assert runtime.services.payments.refunded == [] and failed["replayed"] is False
    await set_stock(engine, 3, KRK, 1)
    again = (await gql.data(EXCHANGE, variables, headers=_till(token_for, "ST-KRK")))["orderExchange"]
    assert [e["code"] for e in again["userErrors"]] == ["EXCHANGE_ALREADY_REFUNDED"]
    assert (again["refunds"], again["cashToHandOut"], again["replayed"]) == (
        failed["refunds"],
        failed["cashToHandOut"],
        True,
    )


async def test_a_return_of_a_cash_sale_is_handed_out_at_the_till(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    original = await _sold_for_cash(gql, engine, token_for, 94, [(1, 3)])
    variables = {"id": original["id"], "lines": [{"orderLineId": original["lines"][0]["id"], "quantity": 2}]}
    back = await gql.data(RETURN, {**variables, "location": location_id(WAW)}, headers=_till(token_for, "ST-WAW"))
    payload = back["orderReturnLines"]
    assert payload["refunds"] == [_share(original, "cash", "113.98", True)]
    assert payload["cashToHandOut"] == {"amount": "113.98", "currency": PLN}
    assert runtime.services.payments.refunded == []


async def test_exchanging_again_what_an_exchange_sold_on_a_cash_credit_hands_the_cash_share_out_once_told_twice(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """56.99 paid in cash, exchanged for 93.99 (37.00 by card), exchanged again for 56.99: the card
    gets its 37.00 from the provider, the till hands out 56.99, the third sale is charged in full;
    a retry of the second exchange states the same refunds, and nothing is paid twice."""
    original = await _sold_for_cash(gql, engine, token_for, 95, [(1, 2)])
    await set_stock(engine, 3, KRK, 4)
    _, first = await _exchange(gql, engine, token_for, original, 95, 3, "swap-up")
    assert first["userErrors"] == []
    sale, payments = first["order"], runtime.services.payments
    await set_stock(engine, 1, KRK, 4)
    variables, second = await _exchange(gql, engine, token_for, sale, 95, 1, "swap-back")
    assert second["userErrors"] == [] and second["difference"]["amount"] == "56.99"  # nothing netted
    assert second["refunds"] == [_share(sale, "card", "37.00", False), _share(original, "cash", "56.99", True)]
    assert second["cashToHandOut"] == {"amount": "56.99", "currency": PLN}
    provider_calls = (list(payments.captured), list(payments.refunded))
    assert payments.refunded == [(f"test_{sale['number']}", Decimal("37.00"))]
    again = (await gql.data(EXCHANGE, variables, headers=_till(token_for, "ST-KRK")))["orderExchange"]
    assert (again["refunds"], again["cashToHandOut"]) == (second["refunds"], second["cashToHandOut"])
    assert (list(payments.captured), list(payments.refunded)) == provider_calls


async def test_an_exchange_sent_twice_at_once_tells_the_till_to_hand_the_cash_out_once(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    """A double-submitted exchange: both answers state the 37.00 in cash (either may be the one the
    till hears), and exactly one, the attempt that settled it, is not `replayed`."""
    import asyncio

    from core.ids import to_global_id

    original = await _sold_for_cash(gql, engine, token_for, 96, [(3, 1)])
    await set_stock(engine, 1, KRK, 4)
    till = _till(token_for, "ST-KRK")
    cart = await new_cart(gql, till, [(1, 1)], customerId=to_global_id("Customer", 96))
    variables = {
        "id": original["id"],
        "lines": [{"orderLineId": original["lines"][0]["id"], "quantity": 1}],
        "cart": cart,
        "key": "swap-twice",
        "payment": {"method": "card"},
    }
    answers = await asyncio.gather(*(gql.data(EXCHANGE, variables, headers=till) for _ in range(2)))
    done = [a["orderExchange"] for a in answers]
    assert [d["userErrors"] for d in done] == [[], []] and done[0]["order"]["id"] == done[1]["order"]["id"]
    assert [d["cashToHandOut"] for d in done] == [{"amount": "37.00", "currency": PLN}] * 2
    assert sorted(d["replayed"] for d in done) == [False, True]
    assert runtime.services.payments.refunded == []
