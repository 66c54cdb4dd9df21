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
    await set_stock(engine, VARIANT, WAW, max(5, quantity))
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


async def test_unit_by_unit_returns_of_a_cheap_line_never_refund_more_than_it_cost(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    from sqlalchemy import text

    async with engine.begin() as conn:
        price = Decimal(
            str(
                (
                    await conn.execute(text("SELECT amount FROM prices WHERE variant_id = 1 AND currency = 'PLN'"))
                ).scalar()
            )
        )
        product = (await conn.execute(text("SELECT product_id FROM product_variants WHERE id = 1"))).scalar()
        await conn.execute(  # clearance: ten units for 0.15, so each unit's share (0.015) rounds up
            text(
                "INSERT INTO promotions (code, description, kind, value, currency, product_ids, category_ids, channels, "
                "active) VALUES (NULL, 'clearance', 'fixed_amount', :v, 'PLN', :p, '[]', '[]', true)"
            ),
            {"v": str(price * 10 - Decimal("0.15")), "p": f"[{product}]"},
        )
    order = await _collected(gql, engine, token_for, quantity=10)
    assert Decimal(str(order["lines"][0]["total"]["amount"])) == Decimal("0.15")
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    refunded = []
    for _ in range(10):
        done = await _return(gql, staff, order, 1, WAW)
        assert done["userErrors"] == []
        refunded.append(Decimal(str(done["order"]["payment"]["refunded"]["amount"])))
    assert refunded == sorted(refunded) and refunded[-1] == Decimal("0.15")  # never above what the line cost
    paid_back = [amount for _, amount in runtime.services.payments.refunded]
    assert all(amount > 0 for amount in paid_back) and sum(paid_back) == Decimal("0.15")
