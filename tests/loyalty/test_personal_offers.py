"""Personal offers: a promotion for a loyalty tier, or for buyers of a category in a period, applied by
the one pricing engine in every channel; purchase targeting only with PERSONALIZATION consent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from commerce.catalog import service as catalog
from commerce.loyalty import service as loyalty
from commerce.pricing.promotion_models import PromotionRow
from core.db import writer
from core.ids import from_global_id
from gateway.runtime import Runtime
from tests.customers.helpers import register, sign_in
from tests.orders.helpers import WAW, new_cart, placed, set_stock

OFFERS = "{ me { offers { description code kind value tiers } } }"
CART = "query($id: ID!) { cart(id: $id) { subtotal { amount } total { amount } discounts { description } } }"
CONSENT = """mutation($g: Boolean!) { consentSet(purpose: "PERSONALIZATION", granted: $g) { userErrors { code } } }"""


async def _promotion(engine: Any, **values: Any) -> None:
    defaults = {"kind": "percentage", "product_ids": [], "category_ids": [], "channels": [], "active": True}
    async with writer(engine).begin() as conn:
        await conn.execute(insert(PromotionRow).values(**{**defaults, **values}))


async def _cart_discounts(gql: Any, headers: dict[str, str], cart: str) -> list[str]:
    return [d["description"] for d in (await gql.data(CART, {"id": cart}, headers=headers))["cart"]["discounts"]]


async def test_a_tier_offer_applies_to_gold_customers_online_and_at_the_till(
    gql: Any, engine: Any, runtime: Runtime, token_for: Any
) -> None:
    await _promotion(engine, description="Gold: 10% off", value=Decimal(10), target_tiers=["GOLD"])
    gold = await register(gql, "gold@example.com")
    gold_key = int(from_global_id(gold["id"])[1])
    async with writer(engine).begin() as conn:
        await loyalty.earn_for_order(conn, gold_key, "big", "store", Decimal(6000), runtime.services.clock.now())
    me = await sign_in(gql, "gold@example.com")
    await register(gql, "bronze@example.com")
    bronze = await sign_in(gql, "bronze@example.com")

    assert (await gql.data(OFFERS, headers=me))["me"]["offers"] == [
        {"description": "Gold: 10% off", "code": None, "kind": "percentage", "value": "10.00", "tiers": ["GOLD"]}
    ]
    assert (await gql.data(OFFERS, headers=bronze))["me"]["offers"] == []

    web = await new_cart(gql, me, [(1, 1)])
    assert await _cart_discounts(gql, me, web) == ["Gold: 10% off"]
    assert await _cart_discounts(gql, bronze, await new_cart(gql, bronze, [(1, 1)])) == []
    till = {**token_for("staff", subject="anna", location="ST-WAW"), "X-Channel": "store"}
    at_till = await new_cart(gql, till, [(1, 1)], customerId=gold["id"])
    assert await _cart_discounts(gql, till, at_till) == ["Gold: 10% off"]


async def test_a_purchase_offer_needs_personalization_consent(gql: Any, engine: Any, runtime: Runtime) -> None:
    product = (await catalog.products_by_ids(engine, [1]))[1]
    variant = (await catalog.variants_by_product_ids(engine, [1]))[1][0].id
    now = runtime.services.clock.now()
    await _promotion(
        engine,
        description="You liked this category: 5 PLN off",
        kind="fixed_amount",
        value=Decimal(5),
        currency="PLN",
        target_category_ids=[product.category_id],
        target_bought_from=now - timedelta(days=30),
        target_bought_until=now + timedelta(days=1),
    )
    await set_stock(engine, variant, WAW, 10)
    await register(gql, "fan@example.com")
    me = await sign_in(gql, "fan@example.com")
    await placed(gql, me, await new_cart(gql, me, [(variant, 1)]), "first", location=WAW)

    cart = await new_cart(gql, me, [(variant, 1)])
    assert (await gql.data(OFFERS, headers=me))["me"]["offers"] == []  # bought, but no consent
    assert await _cart_discounts(gql, me, cart) == []
    await gql.data(CONSENT, {"g": True}, headers=me)
    assert [o["description"] for o in (await gql.data(OFFERS, headers=me))["me"]["offers"]] == [
        "You liked this category: 5 PLN off"
    ]
    assert await _cart_discounts(gql, me, cart) == ["You liked this category: 5 PLN off"]
    await gql.data(CONSENT, {"g": False}, headers=me)
    assert await _cart_discounts(gql, me, cart) == []  # withdrawn: gone on the next request
