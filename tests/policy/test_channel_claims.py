"""Who may claim a channel: the tills' and the call center's channels are for operators only.

The channel comes from the client's `X-Channel` header, and prices, promotions, discount codes
and the order's recorded channel follow it. A customer (or anyone) naming `store` once had a
store-only code accepted on their web cart and checked out with it as a store sale; now such a
request is refused before anything runs (`[channels]` in policies/access.toml).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from commerce.customers import service as customers
from commerce.orders.models import OrderRow
from tests.cart.gql_docs import CODES, READ
from tests.orders.helpers import CHECKOUT as CHECKOUT_DOC
from tests.orders.helpers import KRK, checkout_input, new_cart, placed, set_stock

VARIANT = 1
STRICT = {"Accept": "application/graphql-response+json"}
ANYONE_ELSE = ("anonymous", "customer")


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


@pytest.fixture
def who(customer: dict[str, str], token_for: Any) -> dict[str, dict[str, str]]:
    return {
        "anonymous": {},
        "customer": customer,
        "staff": token_for("staff", subject="anna", location="ST-KRK"),
        "agent": token_for("agent", subject="agent-1"),
        "dpo": token_for("dpo", subject="dpo-1"),
        "admin": token_for("admin", subject="admin-1"),
        "integration": token_for("integration", subject="erp-1"),
    }


async def _store_only_code(engine: Any, code: str = "TILL50", percent: int = 50) -> None:
    """A percentage code valid only in the `store` channel (a till's promotion)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO promotions (code, description, kind, value, product_ids, category_ids, channels, active)"
                " VALUES (:code, :code, 'percentage', :percent, '[]', '[]', '[\"store\"]', true)"
            ),
            {"code": code, "percent": percent},
        )


async def _orders(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(OrderRow))).scalar_one())


def _refusal(response: Any, media_type: str = "application/json") -> str:
    """The refusal's message, after checking it is the typed 403 with no data, never kept by a cache."""
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "private, no-store"
    body = response.json()
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "CHANNEL_NOT_ALLOWED"
    return str(error["message"])


async def test_a_customer_naming_the_store_channel_gets_no_store_only_code_and_no_store_sale(
    gql: Any, engine: Any, customer: dict[str, str]
) -> None:
    """The reported bug: `X-Channel: store` on a web cart took a 50% store-only code to checkout."""
    await _store_only_code(engine)
    await set_stock(engine, VARIANT, KRK, 3)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    as_store = {**customer, "X-Channel": "store"}

    applied = await gql.post(CODES, {"cartId": cart, "codes": ["TILL50"]}, headers=as_store)
    assert "staff or admin" in _refusal(applied)
    web = (await gql.data(CODES, {"cartId": cart, "codes": ["TILL50"]}, headers=customer))["cartDiscountCodesUpdate"]
    assert [e["code"] for e in web["userErrors"]] == ["DISCOUNT_CODE_NOT_IN_CHANNEL"]
    assert web["cart"]["discountCodes"] == [] and web["cart"]["discounts"] == []

    sale = checkout_input(cart, "store-sale", "IN_STORE", location=KRK, payment="cash")
    _refusal(await gql.post(CHECKOUT_DOC, {"input": sale}, headers=as_store))
    collect = checkout_input(cart, "collect", location=KRK)
    _refusal(await gql.post(CHECKOUT_DOC, {"input": collect}, headers=as_store))
    assert await _orders(engine) == 0
    still = (await gql.data(READ, {"id": cart}, headers=customer))["cart"]
    assert still["discountCodes"] == [] and still["total"] == still["subtotal"]

    order = await placed(gql, customer, cart, "web", location=KRK)  # the same cart, on the web: a web sale
    assert order["channel"]["code"] == "web" and Decimal(order["discountTotal"]["amount"]) == 0


@pytest.mark.parametrize("role", ANYONE_ELSE)
@pytest.mark.parametrize(("channel", "allowed"), [("store", "staff or admin"), ("call-center", "agent or admin")])
@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_anyone_but_an_operator_naming_an_operators_channel_is_refused_before_anything_runs(
    gql: Any, engine: Any, who: dict[str, dict[str, str]], role: str, channel: str, allowed: str, accept: str
) -> None:
    """A read, a cart, a code: all refused with the same typed 403, in the media type asked for."""
    headers = {**who[role], "X-Channel": channel, "Accept": accept}
    message = _refusal(await gql.post("{ channels { code } }", headers=headers), accept)
    assert allowed in message and repr(channel) in message and "X-Channel" in message
    _refusal(await gql.post("mutation { cartCreate { cart { id } } }", headers=headers), accept)
    assert await _orders(engine) == 0


async def test_a_cacheable_public_answer_is_refused_too_when_the_response_cache_is_on(gateway: Any) -> None:
    """The check comes before the response cache: an anonymous catalog read names `store` in vain."""
    http = await gateway(response_cache=True)
    query = {"query": "{ channels { code } }"}
    assert (await http.post("/graphql", json=query)).status_code == 200
    _refusal(await http.post("/graphql", json=query, headers={"X-Channel": "store"}))
    _refusal(await http.post("/graphql", json=query, headers={"X-Channel": "store"}))  # nor kept, nor served


async def test_web_and_mobile_stay_open_to_everyone(gql: Any, who: dict[str, dict[str, str]]) -> None:
    for role, headers in who.items():
        for channel in ("web", "mobile"):
            data = await gql.data("{ channels { code } }", headers={**headers, "X-Channel": channel})
            assert data["channels"], (role, channel)


async def test_each_operators_channel_is_for_its_own_operators_and_admins(
    gql: Any, who: dict[str, dict[str, str]]
) -> None:
    served = {"store": {"staff", "admin"}, "call-center": {"agent", "admin"}}
    wrong = []
    for channel, roles in served.items():
        for role, headers in who.items():
            response = await gql.post("{ channels { code } }", headers={**headers, "X-Channel": channel})
            if (response.status_code == 200) != (role in roles):
                wrong.append(f"{role} on {channel}: {response.status_code} {response.text}")
    assert not wrong, "\n".join(wrong)


async def test_staff_at_the_till_still_apply_a_store_only_code_and_sell_in_store(
    gql: Any, engine: Any, customer: dict[str, str], token_for: Any
) -> None:
    await _store_only_code(engine)
    await set_stock(engine, VARIANT, KRK, 3)
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(VARIANT, 1)])
    payload = (await gql.data(CODES, {"cartId": cart, "codes": ["TILL50"]}, headers=till))["cartDiscountCodesUpdate"]
    assert payload["userErrors"] == [] and payload["cart"]["discountCodes"] == ["TILL50"]
    order = await placed(gql, till, cart, "till", method="IN_STORE", location=None, payment="cash")
    assert order["channel"]["code"] == "store" and order["status"] == "COMPLETED"
    half = (Decimal(order["subtotal"]["amount"]) / 2).quantize(Decimal("0.01"))
    assert abs(Decimal(order["discountTotal"]["amount"]) - half) <= Decimal("0.01")  # rounded to the cent


async def test_an_agent_in_the_call_center_still_serves_a_customer(
    gql: Any, who: dict[str, dict[str, str]], customer: dict[str, str]
) -> None:
    me = await gql.data("{ me { id } }", headers=customer)
    agent = {**who["agent"], "X-Channel": "call-center"}
    cart = await gql.data(
        "mutation($id: ID!) { cartCreate(customerId: $id) { cart { id } userErrors { code } } }",
        {"id": me["me"]["id"]},
        headers=agent,
    )
    assert cart["cartCreate"]["userErrors"] == [] and cart["cartCreate"]["cart"]["id"]
    found = await gql.data('{ customerByEmail(email: "ada@example.com") { id } }', headers=agent)
    assert found["customerByEmail"]["id"] == me["me"]["id"]
