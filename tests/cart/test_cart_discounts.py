"""Discount codes through the API: WELCOME10 gives the same discount in every channel."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert, select, text

from commerce.cart.models import CartRow
from core.db import create_engine
from core.migrate import migrate
from tests.cart.gql_docs import CODES, CREATE, READ, line, mutate, variants


async def test_welcome10_gives_the_same_ten_percent_in_every_channel(gql, token_for):
    v = await variants(gql, min_available=2)
    cart = (await mutate(gql, CREATE, {"lines": [line(v[0], 2), line(v[1], 1)]}))["cart"]
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": [" welcome10 "], "v": cart["version"]})
    assert payload["userErrors"] == []
    assert payload["cart"]["discountCodes"] == ["WELCOME10"]
    # the guest's cart read where it may be: by the guest online, by staff at a till and by an agent on the phone
    who = {"store": token_for("staff", location="ST-WAW"), "call-center": token_for("agent")}
    seen = [
        (await gql.data(READ, {"id": cart["id"]}, headers={**who.get(c, {}), "X-Channel": c}))["cart"]
        for c in ("web", "mobile", "store", "call-center")
    ]
    assert all(s == seen[0] for s in seen)
    priced = seen[0]
    subtotal = Decimal(priced["subtotal"]["amount"])
    discount = Decimal(priced["discounts"][0]["amount"]["amount"])
    assert discount == (subtotal / 10).quantize(Decimal("0.01"))
    assert Decimal(priced["total"]["amount"]) == subtotal - discount
    assert sum(Decimal(x["total"]["amount"]) for x in priced["lines"]) == subtotal - discount


async def test_an_unknown_code_is_refused_and_nothing_changes(gql):
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["WELCOME10", "FREESTUFF"]})
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("DISCOUNT_CODE_INVALID", ["codes", "1"])]
    assert payload["cart"]["discountCodes"] == []
    assert payload["cart"]["version"] == cart["version"]


async def test_codes_can_be_cleared(gql):
    cart = (await mutate(gql, CREATE, {}))["cart"]
    await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["WELCOME10"]})
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": []})
    assert payload["cart"]["discountCodes"] == [] and payload["cart"]["discounts"] == []


async def test_a_category_code_discounts_only_that_categorys_lines(gql, engine):
    from commerce.pricing.promotion_models import PromotionRow

    data = await gql.data(
        "{ products(first: 20) { edges { node { category { id slug } variants { id sku quantityAvailable } } } } }"
    )
    nodes = [e["node"] for e in data["products"]["edges"] if e["node"]["variants"][0]["quantityAvailable"] > 0]
    kitchen = next(n for n in nodes if n["category"]["slug"] == "kitchen")
    other = next(n for n in nodes if n["category"]["slug"] != "kitchen")
    from core.ids import from_global_id

    category_key = int(from_global_id(kitchen["category"]["id"], "Category")[1])
    async with engine.begin() as conn:
        await conn.execute(
            insert(PromotionRow).values(
                code="KITCHEN20",
                description="20% off kitchen",
                kind="percentage",
                value=20,
                product_ids=[],
                category_ids=[category_key],
                channels=[],
                active=True,
            )
        )
    cart = (await mutate(gql, CREATE, {"lines": [line(kitchen["variants"][0]), line(other["variants"][0])]}))["cart"]
    priced = (await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["KITCHEN20"]}))["cart"]
    by_sku = {x["variant"]["sku"]: x for x in priced["lines"]}
    k, o = by_sku[kitchen["variants"][0]["sku"]], by_sku[other["variants"][0]["sku"]]
    assert Decimal(k["total"]["amount"]) == (Decimal(k["unitPrice"]["amount"]) * Decimal("0.8")).quantize(
        Decimal("0.01")
    )
    assert o["total"]["amount"] == o["unitPrice"]["amount"]


async def test_more_codes_than_a_cart_holds_are_refused_in_one_error(gql, settings):
    """Not one error per code, nor (on PostgreSQL) a query with more parameters than the server takes."""
    cart = (await mutate(gql, CREATE, {}))["cart"]
    for count in (settings.cart_max_discount_codes + 1, 40_000):
        payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": [f"CODE{i}" for i in range(count)]})
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("TOO_MANY_DISCOUNT_CODES", ["codes"])]
        assert payload["cart"]["version"] == cart["version"]
    held = await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["WELCOME10"] * 40})  # the same code, once
    assert held["userErrors"] == [] and held["cart"]["discountCodes"] == ["WELCOME10"]


async def test_a_code_no_promotion_could_have_is_invalid_not_a_server_error(gql):
    """A code longer than any code, or of letters no code has, is simply unknown (a NUL byte, which
    PostgreSQL refuses in text, is refused for every argument at the edge: tests/test_string_inputs.py)."""
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["WELCOME10", "WEL\u202eCOME", "X" * 5000]})
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("DISCOUNT_CODE_INVALID", ["codes", "1"]),
        ("DISCOUNT_CODE_INVALID", ["codes", "2"]),
    ]
    assert payload["cart"]["discountCodes"] == []
    body = await gql.execute(CODES, {"cartId": cart["id"], "codes": ["WEL\x00COME"]})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_codes_window_holds_from_its_first_instant_to_before_its_end_whatever_zone_it_was_written_in(
    gql, engine, clock
):
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from commerce.pricing.promotion_models import PromotionRow

    local = clock.now().astimezone(ZoneInfo("Europe/Warsaw"))
    async with engine.begin() as conn:
        for code, starts, ends in [
            ("STARTS", local, None),
            ("ENDS", None, local),
            ("SOON", local + timedelta(seconds=1), None),
        ]:
            await conn.execute(
                insert(PromotionRow).values(
                    code=code,
                    description=code,
                    kind="percentage",
                    value=10,
                    product_ids=[],
                    category_ids=[],
                    channels=[],
                    starts_at=starts,
                    ends_at=ends,
                    active=True,
                )
            )
    cart = (await mutate(gql, CREATE, {}))["cart"]
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["STARTS", "ENDS", "SOON"]})
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("DISCOUNT_CODE_EXPIRED", ["codes", "1"]),
        ("DISCOUNT_CODE_EXPIRED", ["codes", "2"]),
    ]
    clock.advance(timedelta(seconds=1))
    payload = await mutate(gql, CODES, {"cartId": cart["id"], "codes": ["STARTS", "SOON"]})
    assert payload["userErrors"] == [] and payload["cart"]["discountCodes"] == ["STARTS", "SOON"]


async def test_codes_held_before_the_json_column_survive_the_migration(tmp_path):
    """Carts written when codes were a comma-joined string keep their codes, in order, after 0060."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO carts (id, status, version, discount_codes, created_at, updated_at) "
                    "VALUES ('c1', 'active', 1, 'WELCOME10,SUMMER', :now, :now), "
                    "('c2', 'active', 1, '', :now, :now)"
                ),
                {"now": "2026-01-01 00:00:00.000000"},
            )
        await migrate(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(CartRow.id, CartRow.discount_codes).order_by(CartRow.id))).all()
        assert [tuple(row) for row in rows] == [("c1", ["WELCOME10", "SUMMER"]), ("c2", [])]
    finally:
        await engine.dispose()
