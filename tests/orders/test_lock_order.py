"""Units of work that lock the same rows lock them in one order, so they wait for each other
instead of deadlocking (PostgreSQL aborts one of a deadlocked pair: a 500 for a customer or a
compensation that never commits). SQLite's writers take turns: these interleavings cannot happen there.

Each test holds two requests at the points where, with the rows locked in opposite orders, each
would hold a row the other waits for; both must then go through.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from commerce.inventory import stock
from commerce.orders import checkout as checkouts
from commerce.pricing import usage
from tests.orders.helpers import (
    ADDRESS,
    CANCEL,
    CHECKOUT,
    KRK,
    PICKUP,
    READY,
    RETURN,
    SHIP,
    WAREHOUSE,
    WAW,
    add_code,
    checkout_input,
    location_id,
    new_cart,
    placed,
    set_stock,
    stock_of,
    variant_id,
)

VARIANT = 1
CODES = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["POPULAR"]) { userErrors { code } } }'
ADD_LINES = """mutation($id: ID!, $lines: [CartLineInput!]!) { cartLinesAdd(cartId: $id, lines: $lines) {
  userErrors { code } } }"""
MEET_TIMEOUT = 1.0  # seconds one side waits for the other to reach its point (then goes on regardless)


def _postgres_only(engine: Any) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: no two units of work hold rows at once")


def _meeting() -> Callable[[str], Awaitable[None]]:
    """`arrive(name)`: say this side reached its point, then wait (a while) for the other side's."""
    reached = {"checkout": asyncio.Event(), "other": asyncio.Event()}

    async def arrive(name: str) -> None:
        reached[name].set()
        other = next(event for key, event in reached.items() if key != name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(other.wait(), MEET_TIMEOUT)

    return arrive


async def _cart_with_code(gql: Any, headers: dict[str, str]) -> str:
    cart = await new_cart(gql, headers, [(VARIANT, 1)])
    await gql.data(CODES, {"id": cart}, headers=headers)
    return cart


async def test_a_checkout_and_a_cancel_sharing_a_code_and_a_product_both_go_through(
    gql: Any, engine: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkout claimed the code's use (its counter row) before holding stock; a cancel released
    the stock before giving the use back: each held what the other waited for."""
    _postgres_only(engine)
    await add_code(engine, "POPULAR", 10)
    await set_stock(engine, VARIANT, WAW, 10)
    first, second = token_for("customer", subject="7001"), token_for("customer", subject="7002")
    earlier = await placed(gql, first, await _cart_with_code(gql, first), "k1")
    cart = await _cart_with_code(gql, second)
    arrive = _meeting()

    hold_stock, release = checkouts._hold_stock, usage.release

    async def hold_stock_when_met(*args: Any, **kwargs: Any) -> Any:
        await arrive("checkout")
        return await hold_stock(*args, **kwargs)

    async def release_when_met(*args: Any, **kwargs: Any) -> Any:
        await arrive("other")
        return await release(*args, **kwargs)

    monkeypatch.setattr(checkouts, "_hold_stock", hold_stock_when_met)
    monkeypatch.setattr(usage, "release", release_when_met)
    bought, cancelled = await asyncio.gather(
        gql.post(CHECKOUT, {"input": checkout_input(cart, "k2")}, headers=second),
        gql.post(CANCEL, {"id": earlier["id"]}, headers=token_for("admin")),
    )
    assert bought.status_code == 200 and cancelled.status_code == 200, (bought.text, cancelled.text)
    assert "errors" not in bought.json() and "errors" not in cancelled.json(), (bought.text, cancelled.text)
    assert bought.json()["data"]["checkoutComplete"]["userErrors"] == []
    assert cancelled.json()["data"]["orderCancel"]["order"]["status"] == "CANCELLED"
    assert await stock_of(engine, VARIANT, WAW) == (10, 1)


async def test_a_shipped_checkout_and_a_shipping_of_the_same_goods_from_two_places_both_go_through(
    gql: Any, engine: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shipped order's lines come from several places. Checkout held them line by line (by variant),
    every order step and stockSync by (location, variant): with the first variant at a store and the
    second at the warehouse, checkout and shipping locked the two rows in opposite orders."""
    _postgres_only(engine)
    at_store, at_warehouse = 1, 2  # the lower variant id only at a store, the higher only at the warehouse
    await set_stock(engine, at_store, KRK, 2)
    await set_stock(engine, at_warehouse, WAREHOUSE, 2)
    buyer = token_for("customer", subject="7003")
    lines = [(at_store, 1), (at_warehouse, 1)]
    earlier = await placed(
        gql, buyer, await new_cart(gql, buyer, lines), "k1", method="SHIP_TO_ADDRESS", address=ADDRESS
    )
    cart = await new_cart(gql, buyer, lines)
    arrive = _meeting()
    reserve, consume = stock.reserve, stock.consume

    async def reserve_then_meet(*args: Any, **kwargs: Any) -> bool:
        held = await reserve(*args, **kwargs)
        if held:
            await arrive("checkout")
        return held

    async def consume_then_meet(*args: Any, **kwargs: Any) -> None:
        await consume(*args, **kwargs)
        await arrive("other")

    monkeypatch.setattr(stock, "reserve", reserve_then_meet)
    monkeypatch.setattr(stock, "consume", consume_then_meet)
    bought, shipped = await asyncio.gather(
        gql.post(CHECKOUT, {"input": checkout_input(cart, "k2", "SHIP_TO_ADDRESS", address=ADDRESS)}, headers=buyer),
        gql.post(SHIP, {"id": earlier["id"]}, headers=token_for("integration")),
    )
    assert "errors" not in bought.json() and "errors" not in shipped.json(), (bought.text, shipped.text)
    assert bought.json()["data"]["checkoutComplete"]["userErrors"] == []
    assert shipped.json()["data"]["orderMarkShipped"]["order"]["status"] == "SHIPPED"
    assert await stock_of(engine, at_store, KRK) == (1, 1)
    assert await stock_of(engine, at_warehouse, WAREHOUSE) == (1, 1)


async def test_a_return_of_several_lines_and_a_checkout_of_the_same_goods_both_go_through(
    gql: Any, engine: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A return restocked its lines in the order they were bought in; checkout holds a store's rows by
    variant. With the higher variant bought first, the two locked the store's two rows in opposite orders."""
    _postgres_only(engine)
    low, high = 1, 2
    await set_stock(engine, low, WAW, 5)
    await set_stock(engine, high, WAW, 5)
    buyer, admin = token_for("customer", subject="7004"), token_for("admin")
    cart = await new_cart(gql, buyer, [(high, 1)])
    await gql.data(ADD_LINES, {"id": cart, "lines": [{"variantId": variant_id(low), "quantity": 1}]}, headers=buyer)
    bought = await placed(gql, buyer, cart, "k1")
    # its lines in the order bought: the higher variant first
    for step_document in (READY, PICKUP):
        await gql.data(step_document, {"id": bought["id"]}, headers=admin)
    cart = await new_cart(gql, buyer, [(low, 1), (high, 1)])
    arrive = _meeting()
    reserve, restock = stock.reserve, stock.restock

    async def reserve_then_meet(*args: Any, **kwargs: Any) -> bool:
        held = await reserve(*args, **kwargs)
        if held:
            await arrive("checkout")
        return held

    async def restock_then_meet(*args: Any, **kwargs: Any) -> None:
        await restock(*args, **kwargs)
        await arrive("other")

    monkeypatch.setattr(stock, "reserve", reserve_then_meet)
    monkeypatch.setattr(stock, "restock", restock_then_meet)
    every_line = [{"orderLineId": line["id"], "quantity": 1} for line in bought["lines"]]
    ordered, returned = await asyncio.gather(
        gql.post(CHECKOUT, {"input": checkout_input(cart, "k2")}, headers=buyer),
        gql.post(RETURN, {"id": bought["id"], "lines": every_line, "location": location_id(WAW)}, headers=admin),
    )
    assert "errors" not in ordered.json() and "errors" not in returned.json(), (ordered.text, returned.text)
    assert ordered.json()["data"]["checkoutComplete"]["userErrors"] == []
    assert returned.json()["data"]["orderReturnLines"]["order"]["status"] == "RETURNED"
    assert await stock_of(engine, low, WAW) == await stock_of(engine, high, WAW) == (5, 1)
