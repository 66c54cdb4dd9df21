"""Adding, changing and removing lines: validation, versions, atomic concurrent adds, expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from commerce.cart.service import CartRules, delete_expired_guest_carts
from commerce.inventory.models import StockLevel
from core.ids import from_global_id, to_global_id
from tests.cart.gql_docs import ADD, ATTACH, CODES, CREATE, READ, REMOVE, UPDATE, line, mutate, quantities, variants


async def test_a_guest_cart_id_is_unguessable_and_reads_back(gql):
    v = await variants(gql, min_available=2)
    first = (await mutate(gql, CREATE, {"lines": [line(v[0], 2)]}))["cart"]
    second = (await mutate(gql, CREATE, {"lines": []}))["cart"]
    assert first["id"] != second["id"]
    from core.ids import from_global_id

    token = from_global_id(first["id"], "Cart")[1]
    assert len(token) >= 22  # 16 random bytes, url-safe base64
    read = (await gql.data(READ, {"id": first["id"]}))["cart"]
    assert quantities(read) == {v[0]["sku"]: 2}
    assert read["total"]["amount"] == read["lines"][0]["total"]["amount"]


async def test_an_unknown_cart_id_reads_as_null(gql):
    assert (await gql.data(READ, {"id": to_global_id("Cart", "no-such-cart")}))["cart"] is None


async def test_adding_the_same_variant_again_adds_up_and_bumps_the_version(gql):
    v = await variants(gql, min_available=5)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0], 1)]}))["cart"]
    payload = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[0], 2), line(v[0], 1)]})
    assert payload["userErrors"] == []
    assert quantities(payload["cart"]) == {v[0]["sku"]: 4}
    assert payload["cart"]["version"] == cart["version"] + 1


async def test_invalid_lines_are_reported_with_their_field_and_nothing_is_applied(gql):
    v = await variants(gql, min_available=3)
    scarce = min(await variants(gql, min_available=1), key=lambda x: x["quantityAvailable"])
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0], 1)]}))["cart"]
    bad = [
        line(v[1], 1),  # fine on its own
        line(v[2], 0),
        {"variantId": to_global_id("ProductVariant", 999999), "quantity": 1},
        {"variantId": "not-an-id", "quantity": 1},
        line(scarce, scarce["quantityAvailable"] + 1),
        line(v[1], 100),
    ]
    payload = await mutate(gql, ADD, {"cartId": cart["id"], "lines": bad})
    errors = {tuple(e["field"]): e["code"] for e in payload["userErrors"]}
    assert errors == {
        ("lines", "1", "quantity"): "QUANTITY_OUT_OF_RANGE",
        ("lines", "2", "variantId"): "VARIANT_NOT_FOUND",
        ("lines", "3", "variantId"): "VARIANT_NOT_FOUND",
        ("lines", "4", "quantity"): "INSUFFICIENT_STOCK",
        ("lines", "5", "quantity"): "QUANTITY_OUT_OF_RANGE",
    }
    assert payload["cart"]["version"] == cart["version"]
    assert quantities(payload["cart"]) == {v[0]["sku"]: 1}


async def test_too_many_lines_is_refused(gql, runtime):
    v = await variants(gql, min_available=1)
    runtime.services.settings = runtime.settings.replace(cart_max_lines=3)
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payload = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(x) for x in v[:4]]})
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("TOO_MANY_LINES", ["lines"])]
    assert payload["cart"]["lines"] == []


async def test_update_sets_quantities_zero_removes_and_unknown_lines_are_refused(gql):
    v = await variants(gql, min_available=3)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0], 1), line(v[1], 1)]}))["cart"]
    first, second = cart["lines"]
    payload = await mutate(
        gql,
        UPDATE,
        {
            "cartId": cart["id"],
            "lines": [{"lineId": first["id"], "quantity": 3}, {"lineId": second["id"], "quantity": 0}],
        },
    )
    assert payload["userErrors"] == []
    assert quantities(payload["cart"]) == {v[0]["sku"]: 3}
    refused = await mutate(
        gql,
        UPDATE,
        {
            "cartId": cart["id"],
            "lines": [{"lineId": first["id"], "quantity": 2}, {"lineId": second["id"], "quantity": 1}],
        },
    )
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("CART_LINE_NOT_FOUND", ["lines", "1", "lineId"])
    ]
    assert quantities(refused["cart"]) == {v[0]["sku"]: 3}


async def test_remove_lines(gql):
    v = await variants(gql, min_available=1)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0]), line(v[1])]}))["cart"]
    payload = await mutate(gql, REMOVE, {"cartId": cart["id"], "lineIds": [cart["lines"][0]["id"]]})
    assert quantities(payload["cart"]) == {v[1]["sku"]: 1}
    again = await mutate(gql, REMOVE, {"cartId": cart["id"], "lineIds": [cart["lines"][0]["id"]]})
    assert again["userErrors"][0]["code"] == "CART_LINE_NOT_FOUND"
    assert again["userErrors"][0]["field"] == ["lineIds", "0"]


async def test_stale_expected_version_is_refused_and_nothing_is_lost(gql):
    v = await variants(gql, min_available=3)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0], 1)]}))["cart"]
    await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[1], 1)], "v": cart["version"]})
    stale = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[2], 1)], "v": cart["version"]})
    assert [e["code"] for e in stale["userErrors"]] == ["CART_VERSION_CONFLICT"]
    assert stale["cart"]["version"] == cart["version"] + 1
    assert quantities(stale["cart"]) == {v[0]["sku"]: 1, v[1]["sku"]: 1}


async def test_concurrent_adds_of_the_same_variant_all_count(gql):
    v = max(await variants(gql, min_available=1), key=lambda x: x["quantityAvailable"])
    adds = min(20, v["quantityAvailable"])
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payloads = await asyncio.gather(
        *[mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v, 1)]}) for _ in range(adds)]
    )
    assert all(p["userErrors"] == [] for p in payloads)
    final = (await gql.data(READ, {"id": cart["id"]}))["cart"]
    assert quantities(final) == {v["sku"]: adds}
    assert final["version"] == cart["version"] + adds


async def test_concurrent_adds_each_answer_with_every_line_of_their_version(gql):
    """A change that waited for another's lock sees what that one wrote (on PostgreSQL a statement
    that waits for a row lock still sees the other rows as they were when it began)."""
    v = (await variants(gql, min_available=1))[:8]
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payloads = await asyncio.gather(*[mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(x, 1)]}) for x in v])
    assert all(p["userErrors"] == [] for p in payloads)
    for p in payloads:  # each add brought one new line: a cart at version n holds n - first lines
        assert len(p["cart"]["lines"]) == p["cart"]["version"] - cart["version"]
    assert sorted(p["cart"]["version"] for p in payloads) == [cart["version"] + i for i in range(1, len(v) + 1)]


async def test_concurrent_adds_never_take_more_than_the_stock(gql, engine):
    v, available = (await variants(gql, min_available=1))[0], 4
    key = int(from_global_id(v["id"], "ProductVariant")[1])
    async with engine.begin() as conn:  # 4 at one location, none elsewhere
        await conn.execute(update(StockLevel).where(StockLevel.variant_id == key).values(on_hand=0, reserved=0))
        at = select(StockLevel.location_id).where(StockLevel.variant_id == key).limit(1)
        location = (await conn.execute(at)).scalar_one()
        await conn.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == key, StockLevel.location_id == location)
            .values(on_hand=available)
        )
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payloads = await asyncio.gather(
        *[mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v, 1)]}) for _ in range(available + 3)]
    )
    refused = [p["userErrors"][0]["code"] for p in payloads if p["userErrors"]]
    assert refused == ["INSUFFICIENT_STOCK"] * 3
    final = (await gql.data(READ, {"id": cart["id"]}))["cart"]
    assert quantities(final) == {v["sku"]: available}


async def test_an_abandoned_guest_cart_expires_and_is_cleaned_up(gql, runtime, clock):
    v = await variants(gql, min_available=1)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0])]}))["cart"]
    rules = CartRules.of(runtime.settings)
    clock.advance(rules.guest_ttl - timedelta(seconds=1))
    assert (await gql.data(READ, {"id": cart["id"]}))["cart"] is not None
    assert await delete_expired_guest_carts(runtime.services.engine, now=clock.now(), rules=rules) == 0
    clock.advance(timedelta(seconds=2))
    assert (await gql.data(READ, {"id": cart["id"]}))["cart"] is None
    payload = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[0])]})
    assert payload["userErrors"][0]["code"] == "CART_NOT_FOUND"
    assert await delete_expired_guest_carts(runtime.services.engine, now=clock.now(), rules=rules) == 1


async def test_a_cart_id_the_database_cannot_store_reads_as_unknown(gql):
    """A NUL byte or an over-long key is no cart: null / CART_NOT_FOUND, on SQLite and PostgreSQL alike."""
    v = await variants(gql, min_available=1)
    for key in ("bad\x00key", "x" * 500):
        cart_id = to_global_id("Cart", key)
        body = await gql.execute(READ, {"id": cart_id})
        assert body.get("errors") is None and body["data"]["cart"] is None
        payload = await mutate(gql, ADD, {"cartId": cart_id, "lines": [line(v[0])]})
        assert [e["code"] for e in payload["userErrors"]] == ["CART_NOT_FOUND"]


async def test_a_line_whose_variant_is_withdrawn_from_sale_leaves_the_cart_readable(gql, engine):
    from sqlalchemy import update

    from commerce.catalog.models import ProductVariant
    from core.ids import from_global_id

    v = await variants(gql, min_available=1)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0]), line(v[1])]}))["cart"]
    withdrawn = int(from_global_id(v[0]["id"], "ProductVariant")[1])
    async with engine.begin() as conn:
        await conn.execute(update(ProductVariant).where(ProductVariant.id == withdrawn).values(published=False))
    read = (await gql.data(READ, {"id": cart["id"]}))["cart"]
    assert quantities(read) == {v[1]["sku"]: 1}
    assert read["total"]["amount"] == read["subtotal"]["amount"] == v[1]["price"]["amount"]
    payload = await mutate(gql, ADD, {"cartId": cart["id"], "lines": [line(v[1])]})
    assert payload["userErrors"] == [] and quantities(payload["cart"]) == {v[1]["sku"]: 2}


async def test_an_unknown_cart_is_reported_on_the_argument_that_names_it(gql, token_for):
    unknown = to_global_id("Cart", "no-such-cart")
    customer = token_for("customer", subject="71")
    cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        (ADD, {"cartId": unknown, "lines": []}, {}),
        (UPDATE, {"cartId": unknown, "lines": []}, {}),
        (REMOVE, {"cartId": unknown, "lineIds": []}, {}),
        (CODES, {"cartId": unknown, "codes": []}, {}),
        (ATTACH, {"cartId": unknown}, customer),
    ]
    for document, variables, headers in cases:
        payload = await mutate(gql, document, variables, headers)
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CART_NOT_FOUND", ["cartId"])]
    body = await gql.execute(READ, {"id": "not a global id"})
    assert [(e["extensions"]["code"], e["extensions"].get("field")) for e in body["errors"]] == [
        ("BAD_USER_INPUT", ["id"])
    ]
