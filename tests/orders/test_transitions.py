"""The order state machine through the API: every legal step, and every illegal one changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.orders.helpers import (
    ADDRESS,
    CANCEL,
    PICKUP,
    READY,
    RETURN,
    SHIP,
    WAREHOUSE,
    WAW,
    location_id,
    new_cart,
    placed,
    set_stock,
    stock_of,
)

VARIANT = 1
# How to reach each starting state: the checkout, then steps (run as admin).
PATHS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "PLACED (collect)": ({}, []),
    "PLACED (ship)": ({"method": "SHIP_TO_ADDRESS", "address": ADDRESS}, []),
    "RESERVED": ({"method": "RESERVE_AND_COLLECT", "payment": "cash_on_pickup"}, []),
    "READY_FOR_PICKUP": ({}, ["ready"]),
    "COMPLETED": ({}, ["ready", "pickup"]),
    "SHIPPED": ({"method": "SHIP_TO_ADDRESS", "address": ADDRESS}, ["ship"]),
    "CANCELLED": ({}, ["cancel"]),
    "PARTIALLY_RETURNED": ({}, ["ready", "pickup", "return"]),
    "RETURNED": ({}, ["ready", "pickup", "return", "return"]),
}
LEGAL = {
    ("PLACED (collect)", "ready"): "READY_FOR_PICKUP",
    ("PLACED (collect)", "cancel"): "CANCELLED",
    ("PLACED (ship)", "ship"): "SHIPPED",
    ("PLACED (ship)", "cancel"): "CANCELLED",
    ("RESERVED", "ready"): "READY_FOR_PICKUP",
    ("RESERVED", "cancel"): "CANCELLED",
    ("READY_FOR_PICKUP", "pickup"): "COMPLETED",
    ("READY_FOR_PICKUP", "cancel"): "CANCELLED",
    ("COMPLETED", "return"): "PARTIALLY_RETURNED",
    ("SHIPPED", "return"): "PARTIALLY_RETURNED",
    ("PARTIALLY_RETURNED", "return"): "RETURNED",
}
ACTIONS = ("ready", "pickup", "ship", "cancel", "return")
DOCS = {"ready": READY, "pickup": PICKUP, "ship": SHIP, "cancel": CANCEL, "return": RETURN}
CASES = [(state, action) for state in PATHS for action in ACTIONS]


async def _run(gql: Any, headers: dict[str, str], order: dict[str, Any], action: str) -> dict[str, Any]:
    variables: dict[str, Any] = {"id": order["id"]}
    if action == "return":
        variables |= {"lines": [{"orderLineId": order["lines"][0]["id"], "quantity": 1}], "location": location_id(WAW)}
    body = await gql.data(DOCS[action], variables, headers=headers)
    return dict(next(iter(body.values())))


@pytest.mark.parametrize(("state", "action"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
async def test_each_step_from_each_state(gql: Any, engine: Any, token_for: Any, state: str, action: str) -> None:
    admin = token_for("admin")
    await set_stock(engine, VARIANT, WAW, 5)
    await set_stock(engine, VARIANT, WAREHOUSE, 5, only_here=False)
    checkout_args, path = PATHS[state]
    order = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 2)]), "k", **checkout_args)
    for done in path:
        result = await _run(gql, admin, order, done)
        assert result["userErrors"] == [], (done, result["userErrors"])
        order = result["order"]
    assert order["status"] == state.split(" ")[0]
    before = [await stock_of(engine, VARIANT, loc) for loc in (WAREHOUSE, WAW)]
    result = await _run(gql, admin, order, action)
    if (state, action) in LEGAL:
        assert result["userErrors"] == []
        assert result["order"]["status"] == LEGAL[(state, action)]
        return
    assert result["order"] is None
    assert [e["code"] for e in result["userErrors"]] == ["INVALID_TRANSITION"]
    read = await gql.data("query($id: ID!) { order(id: $id) { status } }", {"id": order["id"]}, headers=admin)
    assert read["order"]["status"] == order["status"]
    assert [await stock_of(engine, VARIANT, loc) for loc in (WAREHOUSE, WAW)] == before


async def test_stock_follows_the_order_through_hand_over(gql: Any, engine: Any, token_for: Any, runtime: Any) -> None:
    staff = token_for("staff", subject="ewa", location="ST-WAW")
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 2)]), "k")
    assert await stock_of(engine, VARIANT, WAW) == (5, 2)
    await _run(gql, staff, order, "ready")
    done = await _run(gql, staff, order, "pickup")
    assert done["order"]["status"] == "COMPLETED" and done["order"]["payment"]["status"] == "CAPTURED"
    assert await stock_of(engine, VARIANT, WAW) == (3, 0)
    assert len(runtime.services.payments.captured) == 1


async def test_cancel_releases_stock_and_voids_the_authorization(
    gql: Any, engine: Any, token_for: Any, runtime: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 2)]), "k")
    done = await _run(gql, token_for("agent"), order, "cancel")
    assert done["order"]["payment"]["status"] == "VOIDED"
    assert await stock_of(engine, VARIANT, WAW) == (5, 0)
    assert len(runtime.services.payments.voided) == 1


async def test_every_state_change_writes_an_outbox_event_with_no_personal_data(
    gql: Any, engine: Any, token_for: Any
) -> None:
    from sqlalchemy import text

    await set_stock(engine, VARIANT, WAREHOUSE, 5)
    order = await placed(
        gql, {}, await new_cart(gql, {}, [(VARIANT, 1)]), "k", method="SHIP_TO_ADDRESS", address=ADDRESS
    )
    await _run(gql, token_for("integration"), order, "ship")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT event_type, payload FROM outbox_events WHERE aggregate_type = 'order' ORDER BY id")
            )
        ).all()
    assert [row[0] for row in rows] == ["order.placed", "order.shipped"]
    assert "Prosta" not in str(rows) and "Ada" not in str(rows)


async def test_an_operators_step_is_audited_in_its_own_transaction(gql: Any, engine: Any, token_for: Any) -> None:
    from sqlalchemy import text

    from vault.audit import verify_chain

    await set_stock(engine, VARIANT, WAW, 5)
    customer = token_for("customer", subject="31")
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "k")
    agent = token_for("agent", subject="agent-7")
    await _run(gql, agent, order, "cancel")
    refused = await _run(gql, agent, order, "cancel")  # INVALID_TRANSITION: rolled back, so no action recorded
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_TRANSITION"]
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                text(
                    "SELECT actor, role, customer_key FROM audit_log WHERE operation = 'mutation orderCancel' AND fields = 'Order.status'"
                )
            )
        ).all()
    assert [tuple(a) for a in actions] == [("agent-7", "agent", "31")]
    assert (await verify_chain(engine)).ok
