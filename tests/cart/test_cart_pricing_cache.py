"""Pricing reads promotions, prices and scopes from a cache, and never shows a stale one after a change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from commerce.pricing.models import Price
from core.db import on_every_statement
from core.ids import from_global_id
from tests.cart.gql_docs import ADD, CREATE, line, variants


async def mutate(gql: Any, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await gql.data(document, variables)
    payload = next(iter(data.values()))
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["cart"]


async def test_a_second_change_reads_no_promotions_prices_or_scopes_from_the_database(gql, engine):
    v = await variants(gql)
    cart = await mutate(gql, CREATE, {"lines": [line(v[0])]})
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.lower())

    with on_every_statement(engine, record):
        await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[0])]})
    assert not [s for s in statements if "from promotions" in s or "from prices" in s], statements
    # whether the variant is for sale comes from the same cache (emptied by every catalog change)
    assert not [s for s in statements if "join products" in s], statements


async def test_a_withdrawal_from_sale_refuses_the_next_add_at_once(gql, engine):
    """The write asks the cache whether a variant is for sale: a catalog change empties it at commit."""
    from commerce.catalog.models import Product, ProductVariant

    v = await variants(gql)
    cart = await mutate(gql, CREATE, {"lines": [line(v[0]), line(v[1])]})  # both are in the cache now
    variant_key, other_key = (int(from_global_id(x["id"], "ProductVariant")[1]) for x in v[:2])
    withdrawals = [
        update(ProductVariant).where(ProductVariant.id == variant_key).values(published=False),
        update(Product)
        .where(Product.id == select(ProductVariant.product_id).where(ProductVariant.id == other_key).scalar_subquery())
        .values(published=False),
    ]
    for withdrawn, statement in zip(v[:2], withdrawals, strict=True):
        async with engine.begin() as conn:
            await conn.execute(statement)
        data = await gql.data(ADD, {"cartId": cart["id"], "lines": [line(withdrawn)]})
        assert [e["code"] for e in data["cartLinesAdd"]["userErrors"]] == ["VARIANT_NOT_FOUND"]


async def test_a_price_change_is_in_the_next_cart_change_at_once(gql, engine):
    v = await variants(gql)
    cart = await mutate(gql, CREATE, {"lines": [line(v[0])]})
    old = Decimal(cart["lines"][0]["unitPrice"]["amount"])
    variant_key = int(from_global_id(v[0]["id"], "ProductVariant")[1])
    async with engine.begin() as conn:
        await conn.execute(update(Price).where(Price.variant_id == variant_key).values(amount=old + 7))
    changed = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[0])]})
    assert Decimal(changed["lines"][0]["unitPrice"]["amount"]) == old + 7
    assert Decimal(changed["total"]["amount"]) == 2 * (old + 7)
