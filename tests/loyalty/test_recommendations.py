"""Recommendations ask first: empty without PERSONALIZATION consent, present with it, empty again
right after withdrawal; a non-consenting customer's orders never influence anyone's."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from commerce.catalog import service as catalog
from commerce.catalog.models import Product
from core.db import writer
from core.ids import to_global_id
from gateway.__main__ import main
from gateway.runtime import Runtime
from tests.customers.helpers import register, sign_in
from tests.orders.helpers import WAW, new_cart, placed, set_stock

RECOMMENDED = "{ me { recommendations(first: 5) { id name } } }"
CONSENT = """mutation($g: Boolean!) { consentSet(purpose: "PERSONALIZATION", granted: $g) {
  consents { purpose granted } userErrors { code } } }"""


async def _variants(engine: Any, products: list[int]) -> dict[int, int]:
    by_product = await catalog.variants_by_product_ids(engine, products)
    return {p: by_product[p][0].id for p in products}


async def _shopper(gql: Any, email: str, consent: bool) -> dict[str, str]:
    await register(gql, email)
    me = await sign_in(gql, email)
    if consent:
        await gql.data(CONSENT, {"g": True}, headers=me)
    return me


async def _buy(gql: Any, me: dict[str, str], variants: list[int], key: str) -> None:
    cart = await new_cart(gql, me, [(v, 1) for v in variants])
    await placed(gql, me, cart, key, location=WAW)


async def _recommended(gql: Any, me: dict[str, str]) -> list[str]:
    return [p["id"] for p in (await gql.data(RECOMMENDED, headers=me))["me"]["recommendations"]]


async def _rebuild(settings: Any, monkeypatch: Any, capsys: Any) -> str:
    """`python -m gateway recommendations rebuild`, as cron runs it (its own event loop and engine)."""
    monkeypatch.setenv("OMNIGATE_DATABASE_URL", settings.database_url)
    for name, value in (("KEK", settings.kek), ("BLIND_INDEX_KEY", settings.blind_index_key)):
        monkeypatch.setenv(f"OMNIGATE_{name}", value)
    assert await asyncio.to_thread(main, ["recommendations", "rebuild"]) == 0
    return str(capsys.readouterr().out)


async def test_recommendations_follow_consent_and_only_consenting_customers_shape_them(
    gql: Any, engine: Any, runtime: Runtime, settings: Any, monkeypatch: Any, capsys: Any
) -> None:
    kettle, mug, tea, toaster, gone = 1, 2, 3, 4, 5
    variants = await _variants(engine, [kettle, mug, tea, toaster, gone])
    for v in variants.values():
        await set_stock(engine, v, WAW, 50, only_here=False)

    bea = await _shopper(gql, "bea@example.com", consent=True)  # kettle with a mug and tea (and a withdrawn item)
    await _buy(gql, bea, [variants[kettle], variants[mug], variants[tea], variants[gone]], "b1")
    await _buy(gql, bea, [variants[kettle], variants[mug]], "b2")
    cy = await _shopper(gql, "cy@example.com", consent=False)  # kettle with a toaster, often, but no consent
    for n in range(3):
        await _buy(gql, cy, [variants[kettle], variants[toaster]], f"c{n}")
    await _buy(gql, await sign_in(gql, "bea@example.com"), [variants[tea]], "b3")
    async with writer(engine).begin() as conn:
        await conn.execute(update(Product).where(Product.id == gone).values(published=False))

    ann = await _shopper(gql, "ann@example.com", consent=False)
    await _buy(gql, ann, [variants[kettle], variants[tea]], "a1")
    assert "from 3 orders of 1 consenting customers" in await _rebuild(settings, monkeypatch, capsys)

    assert await _recommended(gql, ann) == []  # no consent: nothing, and no error
    await gql.data(CONSENT, {"g": True}, headers=ann)
    # the mug, bought with the kettle twice; not the tea (owned), not the toaster (Cy did not consent),
    # not the withdrawn product
    assert await _recommended(gql, ann) == [to_global_id("Product", mug)]
    await gql.data(CONSENT, {"g": False}, headers=ann)
    assert await _recommended(gql, ann) == []  # withdrawal counts on the very next request

    await gql.data(CONSENT, {"g": True}, headers=ann)
    await gql.data(CONSENT, {"g": False}, headers=bea)  # Bea withdraws: the next rebuild forgets her orders
    assert "from 1 orders of 1 consenting customers" in await _rebuild(settings, monkeypatch, capsys)
    assert await _recommended(gql, ann) == []
    assert cy and "toaster" not in str(await gql.data(RECOMMENDED, headers=ann))
