"""After an erasure nothing new is recorded about the person, whoever serves them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from commerce.cart.models import CartRow
from core.ids import from_global_id
from gateway.runtime import Runtime
from tests.customers.helpers import register, sign_in
from tests.customers.test_sessions import RENEW
from tests.orders import helpers as orders
from tests.privacy.helpers import dpo_erase, dpo_export

ADJUST = """mutation($id: ID!, $p: Int!, $r: String!) { loyaltyAdjust(customerId: $id, points: $p, reason: $r) {
    loyalty { balance } userErrors { code field message } } }"""


def _till(token_for: Any) -> dict[str, str]:
    return {**token_for("staff", subject="staff-krk", location="ST-KRK"), "X-Channel": "store"}


async def _erased(gql: Any, token_for: Any, email: str) -> dict[str, Any]:
    customer = await register(gql, email, first="Gosia")
    erased = await dpo_erase(gql, token_for("dpo", subject="dpo-1"), customer["id"])
    assert erased["userErrors"] == [] and erased["request"]["status"] == "COMPLETED"
    return customer


async def _nothing_about(gql: Any, token_for: Any, customer: dict[str, Any]) -> None:
    data = (await dpo_export(gql, token_for("dpo"), customer["id"]))["request"]["export"]["data"]
    assert (data["orders"], data["carts"], data["loyalty"]) == ([], [], None)


async def test_the_till_cannot_open_a_cart_for_an_erased_customer(gql, runtime: Runtime, token_for):
    customer = await _erased(gql, token_for, "gone-cart@example.com")
    lines = [{"variantId": orders.variant_id(1), "quantity": 1}]
    refused = await gql.data(
        orders.CART_CREATE, {"lines": lines, "customerId": customer["id"]}, headers=_till(token_for)
    )
    payload = refused["cartCreate"]
    assert payload["cart"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CUSTOMER_ERASED", ["customerId"])]
    await _nothing_about(gql, token_for, customer)


async def test_an_agent_cannot_adjust_the_points_of_an_erased_customer(gql, token_for):
    customer = await _erased(gql, token_for, "gone-points@example.com")
    agent = {**token_for("agent", subject="agent-7"), "X-Channel": "call-center"}
    variables = {"id": customer["id"], "p": 50, "r": "Pani Gosia called from Gdansk"}
    payload = (await gql.data(ADJUST, variables, headers=agent))["loyaltyAdjust"]
    assert payload["loyalty"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CUSTOMER_ERASED", ["customerId"])]
    await _nothing_about(gql, token_for, customer)


async def test_a_cart_whose_customer_was_erased_meanwhile_becomes_no_order(gql, runtime: Runtime, token_for):
    """A cart the erasure missed (opened while it ran) is refused at checkout, nothing reserved."""
    customer = await _erased(gql, token_for, "gone-order@example.com")
    await orders.set_stock(runtime.services.engine, 1, orders.KRK, 10, only_here=False)
    till = _till(token_for)
    cart = await orders.new_cart(gql, till, [(1, 1)])
    key = int(from_global_id(customer["id"])[1])
    async with runtime.services.engine.begin() as conn:  # as if opened for them while the erasure ran
        await conn.execute(update(CartRow).where(CartRow.id == from_global_id(cart)[1]).values(customer_key=key))
    refused = await orders.checkout(gql, till, cart, "after-erasure", method="IN_STORE", location=None, payment="cash")
    assert refused["order"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("CUSTOMER_ERASED", ["input", "cartId"])]
    assert await orders.total_reserved(runtime.services.engine) == 0


async def test_while_an_erasure_runs_the_person_is_already_erased(gql, runtime: Runtime, token_for, monkeypatch):
    """An erasure stopped half-way (a crash, a restart) leaves the person blocked, not half-erased
    and active: their token and the till are refused until the run is resumed and finished."""
    customer = await register(gql, "midway@example.com", first="Marta")
    me = await sign_in(gql, "midway@example.com")
    service = runtime.services.requests
    profile = next(source for source in service.registry.sources if source.name == "profile")
    finish = profile.erase_many

    async def power_cut(*_: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(profile, "erase_many", power_cut)
    await gql.post(
        "mutation($id: ID!) { dataSubjectErase(customerId: $id) { request { status } } }",
        {"id": customer["id"]},
        headers=token_for("dpo", subject="dpo-1"),
    )
    [stopped] = await service.unfinished()
    assert (await service.get(stopped)).status == "IN_PROGRESS"
    assert (await gql.post("{ me { email } }", headers=me)).status_code == 401
    lines = [{"variantId": orders.variant_id(1), "quantity": 1}]
    refused = await gql.data(
        orders.CART_CREATE, {"lines": lines, "customerId": customer["id"]}, headers=_till(token_for)
    )
    assert [e["code"] for e in refused["cartCreate"]["userErrors"]] == ["CUSTOMER_ERASED"]
    monkeypatch.setattr(profile, "erase_many", finish)
    assert (await service.run(stopped)).status == "COMPLETED"
    await _nothing_about(gql, token_for, customer)


async def test_an_erased_customers_token_cannot_be_renewed(gql, token_for):
    customer = await register(gql, "gone-renew@example.com")
    token = (await sign_in(gql, "gone-renew@example.com"))["Authorization"].split(" ", 1)[1]
    await dpo_erase(gql, token_for("dpo", subject="dpo-1"), customer["id"])
    renewed = (await gql.data(RENEW, {"token": token}))["customerAccessTokenRenew"]
    assert renewed["accessToken"] is None
    assert [e["field"] for e in renewed["userErrors"]] == [["customerAccessToken"]]
