"""Loyalty in every channel, through the API: points earned at the till spend online and the other way
round, the card finds the customer, a declined payment or a cancel gives points back, a return
takes earned points back, and no checkout spends points it does not have."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from commerce.loyalty import errors as loyalty_errors
from commerce.loyalty import service as loyalty
from core.db import writer
from core.ids import from_global_id, to_global_id
from gateway.runtime import Runtime
from tests.customers.helpers import register, sign_in
from tests.orders.helpers import (
    CART_CREATE,
    CHECKOUT,
    DECLINE_CARD,
    KRK,
    WAW,
    checkout_input,
    new_cart,
    set_stock,
    variant_id,
)

VARIANT = 1
POINTS_FIELDS = "id status total { amount } discountTotal { amount } loyaltyPointsEarned loyaltyPointsRedeemed"
PAY = f"""mutation($input: CheckoutInput!) {{ checkoutComplete(input: $input) {{
  order {{ {POINTS_FIELDS} }} userErrors {{ code field message }} }} }}"""
ME = "{ me { loyalty { cardNumber balance transactions(first: 10) { edges { node { kind points channel } } } } } }"
BY_CARD = "query($n: String!) { customerByLoyaltyCard(cardNumber: $n) { id } }"


def _step(name: str) -> str:
    return f"mutation($id: ID!) {{ {name}(orderId: $id) {{ order {{ {POINTS_FIELDS} }} userErrors {{ code }} }} }}"


async def _pay(gql: Any, headers: dict[str, str], cart: str, key: str, points: int = 0, **kw: Any) -> dict[str, Any]:
    variables = {"input": {**checkout_input(cart, key, **kw), "loyaltyPointsToRedeem": points}}
    return dict((await gql.data(PAY, variables, headers=headers))["checkoutComplete"])


async def _balance(gql: Any, me: dict[str, str]) -> int:
    return int((await gql.data(ME, headers=me))["me"]["loyalty"]["balance"])


async def test_points_earned_at_the_till_are_spent_online_and_online_points_at_the_till(
    gql: Any, engine: Any, runtime: Runtime, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, KRK, 10, only_here=False)
    await set_stock(engine, VARIANT, WAW, 10, only_here=False)
    await register(gql, "omni@example.com")
    me = await sign_in(gql, "omni@example.com")
    card = (await gql.data(ME, headers=me))["me"]["loyalty"]["cardNumber"]

    # at the till in Kraków: the card finds the customer, the sale is theirs and earns at once
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    customer_id = (await gql.data(BY_CARD, {"n": card}, headers=till))["customerByLoyaltyCard"]["id"]
    cart = await new_cart(gql, till, [(VARIANT, 2)], customerId=customer_id)
    sale = await _pay(gql, till, cart, "till-1", method="IN_STORE", location=None, payment="cash")
    assert sale["userErrors"] == [] and sale["order"]["status"] == "COMPLETED"
    earned_at_till = int(Decimal(sale["order"]["total"]["amount"]))  # 1 point per złoty, BRONZE x1.0
    assert sale["order"]["loyaltyPointsEarned"] == earned_at_till > 0
    assert await _balance(gql, me) == earned_at_till

    # online: those points pay part of a web order (after promotions, within the policy's share)
    web_cart = await new_cart(gql, me, [(VARIANT, 1)])
    spend = min(earned_at_till, 10)
    web = await _pay(gql, me, web_cart, "web-1", points=spend, location=WAW)
    assert web["userErrors"] == []
    order = web["order"]
    assert order["loyaltyPointsRedeemed"] == spend and order["loyaltyPointsEarned"] == 0  # not fulfilled yet
    assert Decimal(order["discountTotal"]["amount"]) == Decimal(spend) / 100
    assert await _balance(gql, me) == earned_at_till - spend

    # collected in Warsaw: earned on what was paid in money only
    waw = {**token_for("staff", subject="ola", location="ST-WAW"), "X-Channel": "store"}
    await gql.data(_step("orderMarkReadyForPickup"), {"id": order["id"]}, headers=waw)
    done = (await gql.data(_step("orderConfirmPickup"), {"id": order["id"]}, headers=waw))["orderConfirmPickup"]
    earned_online = int(Decimal(order["total"]["amount"]))
    assert done["order"]["status"] == "COMPLETED" and done["order"]["loyaltyPointsEarned"] == earned_online
    balance = earned_at_till - spend + earned_online
    assert await _balance(gql, me) == balance

    # and back at the till: the whole balance, as far as the share allows, pays a store sale
    cart = await new_cart(gql, till, [(VARIANT, 3)], customerId=customer_id)
    spent_at_till = await _pay(
        gql, till, cart, "till-2", points=balance, method="IN_STORE", location=None, payment="cash"
    )
    assert spent_at_till["userErrors"] == [], spent_at_till["userErrors"]
    assert spent_at_till["order"]["loyaltyPointsRedeemed"] == balance
    history = (await gql.data(ME, headers=me))["me"]["loyalty"]["transactions"]["edges"]
    assert [(e["node"]["kind"], e["node"]["channel"]) for e in reversed(history)] == [
        ("EARN", "store"),
        ("REDEEM", "web"),
        ("EARN", "web"),
        ("REDEEM", "store"),
        ("EARN", "store"),
    ]
    key = int(from_global_id(customer_id)[1])
    final, ledger, lots = await loyalty.ledger_sum(engine, key)
    assert final == ledger == lots == await _balance(gql, me)


async def test_more_points_than_held_or_than_the_share_is_a_user_error_naming_the_field(
    gql: Any, engine: Any, runtime: Runtime
) -> None:
    await set_stock(engine, VARIANT, WAW, 10)
    customer = await register(gql, "greedy@example.com")
    me = await sign_in(gql, "greedy@example.com")
    key = int(from_global_id(customer["id"])[1])
    async with writer(engine).begin() as conn:
        await loyalty.adjust(conn, key, 100_000, "test balance", "agent:test", runtime.services.clock.now())
    cart = await new_cart(gql, me, [(VARIANT, 1)])
    over_share = await _pay(gql, me, cart, "k1", points=100_000)
    assert [(e["code"], e["field"]) for e in over_share["userErrors"]] == [
        ("LOYALTY_POINTS_OVER_SHARE", ["input", "loyaltyPointsToRedeem"])
    ]
    async with writer(engine).begin() as conn:
        await loyalty.adjust(conn, key, -99_999, "test balance", "agent:test", runtime.services.clock.now())
    too_many = await _pay(gql, me, cart, "k2", points=2)
    assert [(e["code"], e["field"]) for e in too_many["userErrors"]] == [
        ("INSUFFICIENT_POINTS", ["input", "loyaltyPointsToRedeem"])
    ]
    assert await _balance(gql, me) == 1  # nothing held by the refused checkouts
    guest_cart = await gql.data(CART_CREATE, {"lines": [{"variantId": variant_id(VARIANT), "quantity": 1}]})
    guest = await _pay(gql, {}, guest_cart["cartCreate"]["cart"]["id"], "g1", points=1)
    assert [e["code"] for e in guest["userErrors"]] == ["LOYALTY_SIGN_IN_REQUIRED"]


async def test_a_declined_payment_and_a_cancel_give_points_back_and_earn_nothing(
    gql: Any, engine: Any, runtime: Runtime
) -> None:
    await set_stock(engine, VARIANT, WAW, 10)
    customer = await register(gql, "giveback@example.com")
    me = await sign_in(gql, "giveback@example.com")
    key = int(from_global_id(customer["id"])[1])
    async with writer(engine).begin() as conn:
        await loyalty.adjust(conn, key, 50, "welcome", "agent:test", runtime.services.clock.now())

    cart = await new_cart(gql, me, [(VARIANT, 1)])
    declined = await gql.data(
        CHECKOUT,
        {"input": {**checkout_input(cart, "d1", payment="card", token=DECLINE_CARD), "loyaltyPointsToRedeem": 20}},
        headers=me,
    )
    assert declined["checkoutComplete"]["order"] is None
    assert await _balance(gql, me) == 50

    placed = await _pay(gql, me, cart, "c1", points=20)
    assert placed["userErrors"] == [] and await _balance(gql, me) == 30
    cancelled = (await gql.data(_step("orderCancel"), {"id": placed["order"]["id"]}, headers=me))["orderCancel"]
    assert cancelled["order"]["status"] == "CANCELLED"
    assert cancelled["order"]["loyaltyPointsEarned"] == 0 and cancelled["order"]["loyaltyPointsRedeemed"] == 0
    assert await _balance(gql, me) == 50
    assert await loyalty.ledger_sum(engine, key) == (50, 50, 50)


async def test_a_return_takes_back_the_returned_share_and_records_a_shortfall(
    gql: Any, engine: Any, runtime: Runtime, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, KRK, 10)
    customer = await register(gql, "returns@example.com")
    me = await sign_in(gql, "returns@example.com")
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(VARIANT, 2)], customerId=customer["id"])
    sale = (await _pay(gql, till, cart, "t1", method="IN_STORE", location=None, payment="cash"))["order"]
    earned = sale["loyaltyPointsEarned"]
    lines = await gql.data("query($id: ID!) { order(id: $id) { lines { id } } }", {"id": sale["id"]}, headers=me)
    line_id = lines["order"]["lines"][0]["id"]
    back = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $location: ID!) {{
      orderReturnLines(orderId: $id, lines: $lines, locationId: $location) {{
        order {{ {POINTS_FIELDS} }} userErrors {{ code }} }} }}"""
    one = {
        "id": sale["id"],
        "lines": [{"orderLineId": line_id, "quantity": 1}],
        "location": to_global_id("Location", KRK),
    }
    first = (await gql.data(back, one, headers=till))["orderReturnLines"]
    half = earned - first["order"]["loyaltyPointsEarned"]  # one of two units back: half of what it earned
    assert half in (earned // 2, earned // 2 + 1)
    assert await _balance(gql, me) == earned - half

    key = int(from_global_id(customer["id"])[1])
    async with writer(engine).begin() as conn:  # the customer spent the rest meanwhile
        await loyalty.hold_for_checkout(conn, key, "elsewhere", earned - half, "web", runtime.services.clock.now())
    second = (await gql.data(back, one, headers=till))["orderReturnLines"]
    assert second["order"]["status"] == "RETURNED" and second["order"]["loyaltyPointsEarned"] == 0
    assert await _balance(gql, me) == 0  # never below zero: the shortfall is recorded, not hidden
    entries, _ = await loyalty.transactions_page(engine, key, first=1)
    assert entries[0].kind == "REVERSE" and entries[0].points == 0 and entries[0].shortfall == earned - half


async def test_twenty_concurrent_checkouts_spending_the_whole_balance_one_succeeds(
    engine: Any, runtime: Runtime
) -> None:
    """As concurrent checkouts' transactions would: each holds the whole balance for its own order."""
    now = runtime.services.clock.now()
    async with writer(engine).begin() as conn:
        await loyalty.adjust(conn, 77, 500, "balance to race for", "agent:test", now)

    async def attempt(n: int) -> bool:
        try:
            async with writer(engine).begin() as conn:
                await loyalty.hold_for_checkout(conn, 77, f"race-{n}", 500, "web", now)
        except loyalty_errors.InsufficientPoints:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(20)))
    assert sum(results) == 1
    assert await loyalty.ledger_sum(engine, 77) == (0, 0, 0)


async def test_returning_an_order_unit_by_unit_takes_back_all_it_earned(
    gql: Any, engine: Any, runtime: Runtime, token_for: Any
) -> None:
    from sqlalchemy import text

    async with writer(engine).begin() as conn:  # 4 x 51.25 = 205: a quarter of the points is 51.25
        await conn.execute(text("UPDATE prices SET amount = 51.25 WHERE variant_id = :v"), {"v": VARIANT})
    await set_stock(engine, VARIANT, KRK, 10)
    customer = await register(gql, "unitbyunit@example.com")
    me = await sign_in(gql, "unitbyunit@example.com")
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(VARIANT, 4)], customerId=customer["id"])
    sale = (await _pay(gql, till, cart, "t1", method="IN_STORE", location=None, payment="cash"))["order"]
    earned = sale["loyaltyPointsEarned"]
    assert Decimal(sale["total"]["amount"]) == Decimal("205.00") and earned % 4
    lines = await gql.data("query($id: ID!) { order(id: $id) { lines { id } } }", {"id": sale["id"]}, headers=me)
    back = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $location: ID!) {{
      orderReturnLines(orderId: $id, lines: $lines, locationId: $location) {{
        order {{ {POINTS_FIELDS} }} userErrors {{ code }} }} }}"""
    one = {
        "id": sale["id"],
        "lines": [{"orderLineId": lines["order"]["lines"][0]["id"], "quantity": 1}],
        "location": to_global_id("Location", KRK),
    }
    for returned in range(1, 5):
        done = (await gql.data(back, one, headers=till))["orderReturnLines"]
        taken_back = earned - done["order"]["loyaltyPointsEarned"]
        assert abs(taken_back - Decimal(earned * returned) / 4) <= Decimal("0.5")  # the share so far, rounded once
    assert done["order"]["status"] == "RETURNED" and done["order"]["loyaltyPointsEarned"] == 0
    assert await _balance(gql, me) == 0


async def test_points_given_back_after_their_expiry_date_are_expired_not_spendable(
    gql: Any, engine: Any, runtime: Runtime, token_for: Any, clock: Any
) -> None:
    """A cancelled order gives its points back into the lots they came from, with those lots' expiry:
    points whose date passed meanwhile come back expired, never as a balance to spend."""
    from datetime import timedelta

    await set_stock(engine, VARIANT, WAW, 10)
    customer = await register(gql, "late-cancel@example.com")
    key = int(from_global_id(customer["id"])[1])
    async with writer(engine).begin() as conn:
        await loyalty.adjust(conn, key, 100, "welcome", "agent:test", clock.now())
    clock.advance(timedelta(days=365 * 2 - 2))  # the lot expires in a day or two
    me = token_for("customer", subject=str(key))
    placed = await _pay(gql, me, await new_cart(gql, me, [(VARIANT, 1)]), "late", points=50)
    assert placed["userErrors"] == [] and await _balance(gql, me) == 50

    clock.advance(timedelta(days=5))
    me = token_for("customer", subject=str(key))
    assert await loyalty.expire_points(engine, clock.now()) == 50  # what the order did not hold
    cancelled = (await gql.data(_step("orderCancel"), {"id": placed["order"]["id"]}, headers=me))["orderCancel"]
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await _balance(gql, me) == 0, "expired points came back to spend"
    assert await loyalty.ledger_sum(engine, key) == (0, 0, 0)
    again = await _pay(gql, me, await new_cart(gql, me, [(VARIANT, 1)]), "again", points=50)
    assert [e["code"] for e in again["userErrors"]] == ["INSUFFICIENT_POINTS"]
