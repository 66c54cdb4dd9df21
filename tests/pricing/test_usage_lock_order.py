"""Promotion uses and stock are locked in one order by every order step, so that checkouts claiming a
code's use and cancels giving one back, running at once, never deadlock each other (PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from tests.orders.helpers import CANCEL, CHECKOUT, WAW, add_code, checkout_input, new_cart, set_stock, stock_of

VARIANT = 1
CODES = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["SPRING"]) { userErrors { code } } }'


async def _cart_with_code(gql: Any, headers: dict[str, str]) -> str:
    cart = await new_cart(gql, headers, [(VARIANT, 1)])
    assert (await gql.data(CODES, {"id": cart}, headers=headers))["cartDiscountCodesUpdate"]["userErrors"] == []
    return cart


async def test_checkouts_and_cancels_of_orders_with_one_code_run_at_once_without_a_deadlock(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    await add_code(engine, "SPRING", 5)
    await set_stock(engine, VARIANT, WAW, 500)
    rounds = 12 if engine.dialect.name == "postgresql" else 4
    people = [token_for("customer", subject=str(7000 + n)) for n in range(2 * rounds)]
    placed = []
    for headers in people[:rounds]:
        cart = await _cart_with_code(gql, headers)
        body = await gql.data(CHECKOUT, {"input": checkout_input(cart, "first")}, headers=headers)
        assert body["checkoutComplete"]["userErrors"] == []
        placed.append((headers, body["checkoutComplete"]["order"]["id"]))
    carts = [(headers, await _cart_with_code(gql, headers)) for headers in people[rounds:]]

    responses = await asyncio.gather(
        *(gql.post(CANCEL, {"id": order}, headers=headers) for headers, order in placed),
        *(gql.post(CHECKOUT, {"input": checkout_input(cart, "second")}, headers=h) for h, cart in carts),
    )
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses if r.is_error]
    assert all("errors" not in r.json() for r in responses), [
        r.json()["errors"] for r in responses if "errors" in r.json()
    ]
    async with engine.connect() as conn:
        uses = (await conn.execute(text("SELECT count(*) FROM promotion_usages"))).scalar_one()
        counted = (await conn.execute(text("SELECT used FROM promotion_usage_counters WHERE scope = '*'"))).scalar_one()
    assert uses == counted == rounds
    assert (await stock_of(engine, VARIANT, WAW))[1] == rounds


async def test_a_customers_checkout_with_points_and_a_cancel_of_their_other_order_never_deadlock(
    gql: Any, engine: Any, token_for: Any, runtime: Any, monkeypatch: Any
) -> None:
    """Each customer cancels an order (its code's use and its points given back) while checking out
    another cart of other goods with the same code and points: the counters and the account are
    locked in one order by both."""
    from commerce.loyalty import service as loyalty
    from core.db import writer

    await add_code(engine, "SPRING", 5)
    await set_stock(engine, VARIANT, WAW, 500)
    await set_stock(engine, VARIANT + 1, WAW, 500)
    rounds = 12 if engine.dialect.name == "postgresql" else 4
    keys = [8000 + n for n in range(rounds)]
    people = [token_for("customer", subject=str(key)) for key in keys]
    async with writer(engine).begin() as conn:
        for key in keys:
            await loyalty.adjust(conn, key, 100, "test balance", "agent:test", runtime.services.clock.now())
    placed = []
    for headers in people:
        cart = await _cart_with_code(gql, headers)
        value = {**checkout_input(cart, "first"), "loyaltyPointsToRedeem": 5}
        body = await gql.data(CHECKOUT, {"input": value}, headers=headers)
        assert body["checkoutComplete"]["userErrors"] == []
        placed.append(body["checkoutComplete"]["order"]["id"])
    carts = []
    for headers in people:
        cart = await new_cart(gql, headers, [(VARIANT + 1, 1)])
        assert (await gql.data(CODES, {"id": cart}, headers=headers))["cartDiscountCodesUpdate"]["userErrors"] == []
        carts.append(cart)

    second = [{**checkout_input(cart, "second"), "loyaltyPointsToRedeem": 5} for cart in carts]
    from commerce.orders import points

    hold = points.hold

    async def slow_hold(*args: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.05)  # a slow moment between claiming the code's use and holding the points
        return await hold(*args, **kwargs)

    monkeypatch.setattr(points, "hold", slow_hold)

    async def cancel_soon(headers: dict[str, str], order: str) -> Any:
        await asyncio.sleep(0.02)  # while the checkouts are under way
        return await gql.post(CANCEL, {"id": order}, headers=headers)

    responses = await asyncio.gather(
        *(gql.post(CHECKOUT, {"input": value}, headers=h) for h, value in zip(people, second, strict=True)),
        *(cancel_soon(h, order) for h, order in zip(people, placed, strict=True)),
    )
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert all("errors" not in r.json() for r in responses), [
        r.json()["errors"] for r in responses if "errors" in r.json()
    ]
    for key in keys:
        assert await loyalty.ledger_sum(engine, key) == (95, 95, 95)
