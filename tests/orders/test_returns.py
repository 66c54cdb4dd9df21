"""Returns in any store: partial, full, too many; the returning store is restocked; refunds add up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.orders.helpers import (
    GDN,
    KRK,
    PICKUP,
    READY,
    RETURN,
    WAW,
    location_id,
    new_cart,
    placed,
    set_stock,
    stock_of,
)

VARIANT = 1


async def _collected(gql: Any, engine: Any, token_for: Any, quantity: int = 3) -> dict[str, Any]:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, quantity)]), "k")
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    await gql.data(READY, {"id": order["id"]}, headers=staff)
    done = await gql.data(PICKUP, {"id": order["id"]}, headers=staff)
    return dict(done["orderConfirmPickup"]["order"])


async def _return(
    gql: Any, headers: dict[str, str], order: dict[str, Any], quantity: int, store: int
) -> dict[str, Any]:
    variables = {
        "id": order["id"],
        "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": quantity}],
        "location": location_id(store),
    }
    return dict((await gql.data(RETURN, variables, headers=headers))["orderReturnLines"])


async def test_a_partial_then_full_return_refunds_exactly_what_was_paid(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    order = await _collected(gql, engine, token_for)
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    first = await _return(gql, staff, order, 1, WAW)
    assert first["order"]["status"] == "PARTIALLY_RETURNED"
    assert first["order"]["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert first["order"]["lines"][0]["quantityReturned"] == 1
    rest = await _return(gql, staff, order, 2, WAW)
    assert rest["order"]["status"] == "RETURNED" and rest["order"]["payment"]["status"] == "REFUNDED"
    assert Decimal(rest["order"]["payment"]["refunded"]["amount"]) == Decimal(order["total"]["amount"])
    assert sum(amount for _, amount in runtime.services.payments.refunded) == Decimal(order["total"]["amount"])
    assert await stock_of(engine, VARIANT, WAW) == (5, 0)


async def test_returning_more_than_was_bought_is_refused_and_changes_nothing(
    gql: Any, engine: Any, token_for: Any
) -> None:
    order = await _collected(gql, engine, token_for, quantity=2)
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    too_many = await _return(gql, staff, order, 3, WAW)
    assert too_many["order"] is None
    assert [(e["code"], e["field"]) for e in too_many["userErrors"]] == [
        ("RETURN_QUANTITY_INVALID", ["lines", "0", "quantity"])
    ]
    await _return(gql, staff, order, 2, WAW)
    again = await _return(gql, staff, order, 1, WAW)
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_TRANSITION"]
    assert await stock_of(engine, VARIANT, WAW) == (5, 0)


async def test_a_return_in_another_store_restocks_that_store(gql: Any, engine: Any, token_for: Any) -> None:
    order = await _collected(gql, engine, token_for)
    assert await stock_of(engine, VARIANT, WAW) == (2, 0)
    krakow = token_for("staff", subject="jan", location="ST-KRK")
    done = await _return(gql, krakow, order, 2, KRK)
    assert done["userErrors"] == []
    assert await stock_of(engine, VARIANT, WAW) == (2, 0)
    assert (await stock_of(engine, VARIANT, KRK))[0] == 2


async def test_a_return_creates_the_stock_row_a_store_never_had(gql: Any, engine: Any, token_for: Any) -> None:
    from sqlalchemy import text

    order = await _collected(gql, engine, token_for)
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM stock_levels WHERE variant_id = :v AND location_id = :l"), {"v": VARIANT, "l": GDN}
        )
    gdansk = token_for("staff", subject="ola", location="ST-GDN")
    done = await _return(gql, gdansk, order, 1, GDN)
    assert done["userErrors"] == []
    assert await stock_of(engine, VARIANT, GDN) == (1, 0)


async def test_staff_take_returns_over_their_own_counter_only(gql: Any, engine: Any, token_for: Any) -> None:
    order = await _collected(gql, engine, token_for)
    krakow = token_for("staff", subject="jan", location="ST-KRK")
    body = await gql.execute(
        RETURN,
        {
            "id": order["id"],
            "lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}],
            "location": location_id(WAW),
        },
        headers=krakow,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
