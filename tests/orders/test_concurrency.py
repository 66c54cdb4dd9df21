"""No overselling and no double orders under concurrency, through the API.

PostgreSQL runs the issue's bar (100 customers at 10 units); SQLite, whose writers take turns,
the same with 20 customers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from tests.orders.helpers import CHECKOUT, WAW, add_code, checkout_input, new_cart, set_stock, stock_of

VARIANT = 1
UNITS = 10


def _customers(engine: Any) -> int:
    return 100 if engine.dialect.name == "postgresql" else 20


async def _order_count(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM orders WHERE status = 'PLACED'"))).scalar_one())


async def test_concurrent_checkouts_sell_exactly_the_stock_there_is(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    runtime.services.payments.delay = 0.005  # the provider's network
    await set_stock(engine, VARIANT, WAW, UNITS)
    people = [token_for("customer", subject=str(5000 + n)) for n in range(_customers(engine))]
    carts = [await new_cart(gql, headers, [(VARIANT, 1)]) for headers in people]

    async def attempt(headers: dict[str, str], cart: str) -> Any:
        return await gql.post(CHECKOUT, {"input": checkout_input(cart, "once")}, headers=headers)

    responses = await asyncio.gather(*(attempt(h, c) for h, c in zip(people, carts, strict=True)))
    assert [r.status_code for r in responses] == [200] * len(people)  # no 500s
    payloads = [r.json()["data"]["checkoutComplete"] for r in responses]
    placed = [p for p in payloads if p["order"] is not None]
    refused = [p for p in payloads if p["order"] is None]
    assert len(placed) == UNITS
    assert {e["code"] for p in refused for e in p["userErrors"]} == {"INSUFFICIENT_STOCK"}
    assert len(refused) == len(people) - UNITS
    assert await stock_of(engine, VARIANT, WAW) == (UNITS, UNITS)
    assert await _order_count(engine) == UNITS


async def test_concurrent_retries_of_one_checkout_make_one_order_one_hold_one_authorization(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    runtime.services.payments.delay = 0.02
    await set_stock(engine, VARIANT, WAW, UNITS)
    customer = token_for("customer", subject="4242")
    cart = await new_cart(gql, customer, [(VARIANT, 2)])
    responses = await asyncio.gather(
        *(gql.post(CHECKOUT, {"input": checkout_input(cart, "retry-me")}, headers=customer) for _ in range(20))
    )
    payloads = [r.json()["data"]["checkoutComplete"] for r in responses]
    assert all(p["userErrors"] == [] for p in payloads), [p["userErrors"] for p in payloads]
    assert len({p["order"]["id"] for p in payloads}) == 1
    assert await stock_of(engine, VARIANT, WAW) == (UNITS, 2)
    assert len(runtime.services.payments.authorized) == 1
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 1


async def test_a_code_limited_to_three_uses_is_used_three_times_whatever_the_concurrency(
    gql: Any, engine: Any, token_for: Any
) -> None:
    await add_code(engine, "THREE", 5, usage_limit=3)
    await set_stock(engine, VARIANT, WAW, 50)
    people = [token_for("customer", subject=str(6000 + n)) for n in range(10)]
    carts = [await new_cart(gql, headers, [(VARIANT, 1)]) for headers in people]
    codes = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["THREE"]) { userErrors { code } } }'
    for headers, cart in zip(people, carts, strict=True):
        await gql.data(codes, {"id": cart}, headers=headers)
    responses = await asyncio.gather(
        *(gql.post(CHECKOUT, {"input": checkout_input(c, "k")}, headers=h) for h, c in zip(people, carts, strict=True))
    )
    payloads = [r.json()["data"]["checkoutComplete"] for r in responses]
    assert sum(1 for p in payloads if p["order"] is not None) == 3
    assert {e["code"] for p in payloads for e in p["userErrors"]} == {"DISCOUNT_CODE_USAGE_LIMIT_REACHED"}
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM promotion_usages"))).scalar_one() == 3
    assert (await stock_of(engine, VARIANT, WAW))[1] == 3
