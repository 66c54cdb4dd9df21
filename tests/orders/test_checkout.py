"""Checkout through the API: an order from a cart, stock held, payment authorized, cart closed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from commerce.customers import service as customers
from tests.orders.helpers import (
    ADDRESS,
    DECLINE_CARD,
    KRK,
    TIMEOUT_CARD,
    WAREHOUSE,
    WAW,
    add_code,
    checkout,
    new_cart,
    placed,
    set_stock,
    stock_of,
    total_reserved,
)

VARIANT = 1


@pytest.fixture
async def customer(runtime: Any, token_for: Any) -> dict[str, str]:
    services = runtime.services
    key = await customers.register(
        services.engine,
        services.vault,
        services.clock,
        customers.Registration(email="ada@example.com", password="password-ada", first_name="Ada", last_name="Nowak"),
    )
    return token_for("customer", subject=str(key))


async def test_click_and_collect_holds_stock_at_the_store_and_closes_the_cart(
    gql: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, customer, [(VARIANT, 2)])
    order = await placed(gql, customer, cart, "k1")
    assert order["status"] == "PLACED" and order["pickupLocation"]["code"] == "ST-WAW"
    assert order["payment"]["status"] == "AUTHORIZED" and order["lines"][0]["quantity"] == 2
    assert await stock_of(engine, VARIANT, WAW) == (5, 2)
    me = await gql.data("{ me { cart { id } orders { edges { node { id number } } } } }", headers=customer)
    assert me["me"]["cart"] is None  # closed by the order: the next cartCreate starts afresh
    assert [e["node"]["id"] for e in me["me"]["orders"]["edges"]] == [order["id"]]
    fresh = await new_cart(gql, customer, [])
    assert fresh != cart


async def test_lines_are_a_vat_snapshot_that_adds_up(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, 1, WAW, 5)
    await set_stock(engine, 3, WAW, 5)
    cart = await new_cart(gql, customer, [(1, 3), (3, 1)])
    await gql.data(
        'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["WELCOME10"]) { userErrors { code } } }',
        {"id": cart},
        headers=customer,
    )
    order = await placed(gql, customer, cart, "vat")
    assert Decimal(order["discountTotal"]["amount"]) > 0
    for line in order["lines"]:
        gross, rate = Decimal(line["total"]["amount"]), Decimal(line["taxRate"])
        assert rate == Decimal("0.23")
        assert Decimal(line["taxAmount"]["amount"]) == (gross * rate / (1 + rate)).quantize(Decimal("0.01"))
    assert Decimal(order["taxTotal"]["amount"]) == sum(Decimal(ln["taxAmount"]["amount"]) for ln in order["lines"])
    assert Decimal(order["total"]["amount"]) == sum(Decimal(ln["total"]["amount"]) for ln in order["lines"])


async def test_a_retry_with_the_same_key_returns_the_same_order_and_reserves_once(
    gql: Any, engine: Any, customer: Any, runtime: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    first = await placed(gql, customer, cart, "same")
    again = await placed(gql, customer, cart, "same")
    assert again["id"] == first["id"]
    assert await stock_of(engine, VARIANT, WAW) == (5, 1)
    assert len(runtime.services.payments.authorized) == 1


async def test_the_same_key_for_another_cart_is_a_user_error(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "key")
    other = await new_cart(gql, customer, [(VARIANT, 1)])
    payload = await checkout(gql, customer, other, "key")
    assert payload["order"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_a_key_never_returns_someone_elses_order(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "shared-key")
    guest_cart = await new_cart(gql, {}, [(VARIANT, 1)])
    guest_order = await placed(gql, {}, guest_cart, "shared-key")  # another owner: its own order
    mine = await gql.data("{ me { orders { edges { node { id } } } } }", headers=customer)
    assert guest_order["id"] not in [e["node"]["id"] for e in mine["me"]["orders"]["edges"]]


async def test_a_cart_made_before_signing_in_becomes_the_customers_order(gql: Any, engine: Any, customer: Any) -> None:
    """Never attached, it still becomes theirs at checkout: the order is in their account."""
    await set_stock(engine, VARIANT, WAW, 5)
    before_sign_in = await new_cart(gql, {}, [(VARIANT, 1)])
    order = await placed(gql, customer, before_sign_in, "k")
    me = await gql.data("{ me { orders { edges { node { id } } } } }", headers=customer)
    assert [e["node"]["id"] for e in me["me"]["orders"]["edges"]] == [order["id"]]


async def test_a_cart_made_before_signing_in_joins_the_customers_own_and_is_not_ordered_unseen(
    gql: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, 1, WAW, 5)
    await set_stock(engine, 3, WAW, 5)
    mine = await new_cart(gql, customer, [(3, 1)])
    before_sign_in = await new_cart(gql, {}, [(1, 1)])
    payload = await checkout(gql, customer, before_sign_in, "k")
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CART_MERGED", ["input", "cartId"])]
    assert await total_reserved(engine) == 0
    me = await gql.data("{ me { cart { id lines { quantity } } } }", headers=customer)
    assert me["me"]["cart"]["id"] == mine and len(me["me"]["cart"]["lines"]) == 2
    again = await checkout(gql, customer, before_sign_in, "k")  # the answer was lost: the same call again
    assert again["order"] is None and [e["code"] for e in again["userErrors"]] == ["CART_MERGED"]
    assert await total_reserved(engine) == 0


async def test_a_code_the_customer_may_not_use_is_refused_at_checkout_not_dropped(
    gql: Any, engine: Any, customer: Any, runtime: Any
) -> None:
    """Becoming theirs at checkout, the cart keeps its codes: one that no longer applies is named."""
    from sqlalchemy import text

    await add_code(engine, "SPRING", 10)
    runtime.services.pricing_cache.clear()
    await set_stock(engine, VARIANT, WAW, 5)
    before_sign_in = await new_cart(gql, {}, [(VARIANT, 1)])
    codes = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["SPRING"]) { userErrors { code } } }'
    assert (await gql.data(codes, {"id": before_sign_in}))["cartDiscountCodesUpdate"]["userErrors"] == []
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE promotions SET ends_at = '2000-01-01 00:00:00' WHERE code = 'SPRING'"))
    runtime.services.pricing_cache.clear()
    refused = await checkout(gql, customer, before_sign_in, "k")
    assert refused["order"] is None
    assert [e["code"] for e in refused["userErrors"]] == ["DISCOUNT_CODE_EXPIRED"]


async def test_not_enough_stock_names_the_lines_and_holds_nothing(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, 1, WAW, 5)
    await set_stock(engine, 3, WAW, 1)
    cart = await new_cart(gql, customer, [(1, 2)])
    await gql.data(
        "mutation($id: ID!, $v: ID!) { cartLinesAdd(cartId: $id, lines: [{variantId: $v, quantity: 1}]) { userErrors { code } } }",
        {"id": cart, "v": "UHJvZHVjdFZhcmlhbnQ6Mw"},
        headers=customer,
    )
    await set_stock(engine, 3, WAW, 0)  # sold elsewhere meanwhile
    payload = await checkout(gql, customer, cart, "short")
    assert payload["order"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INSUFFICIENT_STOCK", ["cart", "lines", "1"])]
    assert await stock_of(engine, 1, WAW) == (5, 0)
    me = await gql.data("{ me { cart { id } } }", headers=customer)
    assert me["me"]["cart"]["id"] == cart  # still open: the customer can fix it


@pytest.mark.parametrize(("token", "code"), [(DECLINE_CARD, "PAYMENT_DECLINED"), (TIMEOUT_CARD, "PAYMENT_TIMEOUT")])
async def test_a_failed_payment_leaves_nothing_reserved_and_the_cart_open(
    gql: Any, engine: Any, customer: Any, runtime: Any, token: str, code: str
) -> None:
    payments = runtime.services.payments
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, customer, [(VARIANT, 2)])
    payload = await checkout(gql, customer, cart, "pay", token=token)
    assert payload["order"] is None and [e["code"] for e in payload["userErrors"]] == [code]
    assert await total_reserved(engine) == 0
    voids = 1 if code == "PAYMENT_TIMEOUT" else 0  # a timeout may have held the amount; a decline held nothing
    assert len(payments.voided) == voids
    me = await gql.data("{ me { cart { id } orders { edges { node { id } } } } }", headers=customer)
    assert me["me"]["cart"]["id"] == cart and me["me"]["orders"]["edges"] == []
    again = await checkout(gql, customer, cart, "pay", token=token)  # the same key answers the same
    assert [e["code"] for e in again["userErrors"]] == [code]
    assert len(payments.voided) == voids and await total_reserved(engine) == 0
    order = await placed(gql, customer, cart, "pay-2")  # a new key, a good card
    assert order["status"] == "PLACED"


async def test_shipping_seals_the_address_and_allocates_from_the_warehouse_first(
    gql: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, VARIANT, WAREHOUSE, 3)
    await set_stock(engine, VARIANT, KRK, 3, only_here=False)
    cart = await new_cart(gql, customer, [(VARIANT, 2)])
    order = await placed(gql, customer, cart, "ship", method="SHIP_TO_ADDRESS", address=ADDRESS)
    assert order["status"] == "PLACED" and order["pickupLocation"] is None
    assert await stock_of(engine, VARIANT, WAREHOUSE) == (3, 2)
    read = await gql.data(
        "query($id: ID!) { order(id: $id) { shippingAddress { city line1 } } }", {"id": order["id"]}, headers=customer
    )
    assert read["order"]["shippingAddress"] == {"city": "Warszawa", "line1": "ul. Prosta 1"}
    async with engine.connect() as conn:
        from sqlalchemy import text

        raw = (await conn.execute(text("SELECT shipping_address_sealed FROM orders"))).scalar_one()
    assert b"Prosta" not in raw


async def test_a_guest_shipped_order_gets_a_vault_subject_of_its_own(gql: Any, engine: Any) -> None:
    await set_stock(engine, VARIANT, WAREHOUSE, 3)
    cart = await new_cart(gql, {}, [(VARIANT, 1)])
    order = await placed(gql, {}, cart, "guest", method="SHIP_TO_ADDRESS", address=ADDRESS)
    assert order["status"] == "PLACED"
    async with engine.connect() as conn:
        from sqlalchemy import text

        subject = (await conn.execute(text("SELECT subject_id FROM orders"))).scalar_one()
        known = (await conn.execute(text("SELECT count(*) FROM vault_subjects WHERE id = :s"), {"s": subject})).scalar()
    assert subject and known == 1


async def test_collect_orders_take_no_address_and_need_a_click_and_collect_store(
    gql: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    with_address = await checkout(gql, customer, cart, "a", address=ADDRESS)
    assert [e["code"] for e in with_address["userErrors"]] == ["ADDRESS_NOT_ALLOWED"]
    outlet = await checkout(gql, customer, cart, "b", location=4)  # Gdańsk outlet: no click & collect
    assert [e["code"] for e in outlet["userErrors"]] == ["PICKUP_LOCATION_INVALID"]
    no_address = await checkout(gql, customer, cart, "c", method="SHIP_TO_ADDRESS")
    assert [e["code"] for e in no_address["userErrors"]] == ["ADDRESS_REQUIRED"]
    assert await total_reserved(engine) == 0


async def test_reserve_and_collect_holds_until_reserved_until_then_expiry_releases_it(
    gql: Any, engine: Any, customer: Any, runtime: Any, clock: Any, token_for: Any
) -> None:
    from datetime import timedelta

    from commerce.orders.service import expire_reservations
    from schema.orders import order_services_of

    await set_stock(engine, VARIANT, WAW, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    order = await placed(gql, customer, cart, "r", method="RESERVE_AND_COLLECT", payment="cash_on_pickup")
    assert order["status"] == "RESERVED" and order["payment"]["status"] == "DUE_AT_PICKUP"
    assert order["reservedUntil"] is not None
    services = order_services_of(runtime.services)
    assert (await expire_reservations(services)).reservations_released == 0
    clock.advance(timedelta(hours=49))
    assert (await expire_reservations(services)).reservations_released == 1
    assert (await expire_reservations(services)).reservations_released == 0  # idempotent
    assert await stock_of(engine, VARIANT, WAW) == (3, 0)
    read = await gql.data(
        "query($id: ID!) { order(id: $id) { status } }", {"id": order["id"]}, headers=token_for("agent")
    )
    assert read["order"]["status"] == "CANCELLED"


async def test_cash_on_pickup_is_for_reserve_and_collect_only(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, VARIANT, WAW, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    payload = await checkout(gql, customer, cart, "x", payment="cash_on_pickup")
    assert [e["code"] for e in payload["userErrors"]] == ["PAYMENT_METHOD_NOT_ALLOWED"]


async def test_staff_at_the_till_sell_in_store_for_a_customer_completed_at_once(
    gql: Any, engine: Any, customer: Any, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, KRK, 3)
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    found = await gql.data('{ customerByEmail(email: "ada@example.com") { id } }', headers={**token_for("agent")})
    cart = await new_cart(gql, till, [(VARIANT, 1)], customerId=found["customerByEmail"]["id"])
    order = await placed(gql, till, cart, "till", method="IN_STORE", location=None, payment="cash")
    assert order["status"] == "COMPLETED" and order["pickupLocation"]["code"] == "ST-KRK"
    assert order["channel"]["code"] == "store" and order["payment"]["status"] == "CAPTURED"
    assert await stock_of(engine, VARIANT, KRK) == (2, 0)
    history = await gql.data("{ me { orders { edges { node { id } } } } }", headers=customer)
    assert [e["node"]["id"] for e in history["me"]["orders"]["edges"]] == [order["id"]]


async def test_in_store_sales_are_for_the_till_only(gql: Any, engine: Any, customer: Any) -> None:
    await set_stock(engine, VARIANT, KRK, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    payload = await checkout(gql, customer, cart, "web", method="IN_STORE", location=KRK, payment="card")
    assert [e["code"] for e in payload["userErrors"]] == ["IN_STORE_AT_TILL_ONLY"]


async def test_discount_usage_limits_hold_and_usages_are_recorded(gql: Any, engine: Any, customer: Any) -> None:
    from sqlalchemy import text

    await add_code(engine, "ONCE", 5, usage_limit=1)
    await set_stock(engine, VARIANT, WAW, 5)
    guest = await new_cart(gql, {}, [(VARIANT, 1)])
    mine = await new_cart(gql, customer, [(VARIANT, 1)])
    set_codes = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["ONCE"]) { userErrors { code } } }'
    for cart, headers in ((guest, {}), (mine, customer)):
        await gql.data(set_codes, {"id": cart}, headers=headers)
    first = await placed(gql, {}, guest, "g")
    assert Decimal(first["discountTotal"]["amount"]) > 0
    second = await checkout(gql, customer, mine, "m")  # the code was used up meanwhile
    assert [e["code"] for e in second["userErrors"]] == ["DISCOUNT_CODE_USAGE_LIMIT_REACHED"]
    assert await stock_of(engine, VARIANT, WAW) == (5, 1)
    async with engine.connect() as conn:
        used = (await conn.execute(text("SELECT count(*) FROM promotion_usages"))).scalar()
    assert used == 1


async def test_a_crash_between_reserving_and_confirming_is_cleaned_up_by_expiry(
    gql: Any, engine: Any, customer: Any, runtime: Any, clock: Any
) -> None:
    from datetime import timedelta

    from commerce.orders.service import expire_reservations
    from schema.orders import order_services_of

    class Crashing:
        async def authorize(self, request: Any) -> Any:
            raise RuntimeError("the process died here")

    await set_stock(engine, VARIANT, WAW, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    healthy, runtime.services.payments = runtime.services.payments, Crashing()
    body = await gql.execute(
        "mutation($i: CheckoutInput!) { checkoutComplete(input: $i) { order { id } } }",
        {
            "i": {
                "cartId": cart,
                "idempotencyKey": "crash",
                "fulfillmentMethod": "CLICK_AND_COLLECT",
                "pickupLocationId": "TG9jYXRpb246Mg",
                "payment": {"method": "card"},
            }
        },
        headers=customer,
    )
    runtime.services.payments = healthy
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await stock_of(engine, VARIANT, WAW) == (3, 1)  # held by the PENDING order
    services = order_services_of(runtime.services)
    assert (await expire_reservations(services)).checkouts_failed == 0  # not yet overdue
    clock.advance(timedelta(minutes=16))
    assert (await expire_reservations(services)).checkouts_failed == 1
    assert (await expire_reservations(services)).checkouts_failed == 0
    assert await stock_of(engine, VARIANT, WAW) == (3, 0)


async def test_every_open_device_hears_that_the_cart_was_ordered(
    gql: Any, engine: Any, customer: Any, runtime: Any
) -> None:
    import asyncio

    from core.ids import from_global_id

    await set_stock(engine, VARIANT, WAW, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    async with runtime.services.broadcaster.subscribe(f"cart:{from_global_id(cart)[1]}") as messages:
        await placed(gql, customer, cart, "heard")
        await asyncio.wait_for(anext(messages), 2)
    read = await gql.data("query($id: ID!) { cart(id: $id) { status } }", {"id": cart}, headers=customer)
    assert read["cart"]["status"] == "ORDERED"  # what a device re-reading it sees


async def test_staff_list_their_stores_pickups_newest_first_page_by_page(gql: Any, engine: Any, token_for: Any) -> None:
    await set_stock(engine, VARIANT, WAW, 10)
    await set_stock(engine, VARIANT, KRK, 10, only_here=False)
    waw = [await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 1)]), f"w{n}") for n in range(3)]
    await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 1)]), "k", location=KRK)
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    page = """query($loc: ID!, $after: String) { orders(first: 2, after: $after, filter: {pickupLocationId: $loc}) {
        edges { node { id } cursor } pageInfo { hasNextPage endCursor } } }"""
    first = (await gql.data(page, {"loc": "TG9jYXRpb246Mg"}, headers=staff))["orders"]
    rest = (await gql.data(page, {"loc": "TG9jYXRpb246Mg", "after": first["pageInfo"]["endCursor"]}, headers=staff))[
        "orders"
    ]
    assert first["pageInfo"]["hasNextPage"] and not rest["pageInfo"]["hasNextPage"]
    listed = [e["node"]["id"] for e in first["edges"] + rest["edges"]]
    assert listed == [o["id"] for o in reversed(waw)]


async def test_an_order_history_costs_the_same_queries_for_one_order_or_many(
    gql: Any, engine: Any, customer: Any, count_statements: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 10)
    history = """{ me { orders { edges { node { number channel { code } pickupLocation { code }
        lines { sku taxAmount { amount } } payment { status } } } } } }"""

    async def cost() -> int:
        count_statements.count = 0
        with count_statements:
            await gql.data(history, headers=customer)
        return int(count_statements.count)

    await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "one")
    one = await cost()
    for n in range(3):
        await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), f"more-{n}")
    assert await cost() == one
