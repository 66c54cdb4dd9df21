"""An order's discount codes: a JSON array, as the cart's, through checkout and through migration 0071."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from commerce.orders.models import OrderRow
from commerce.orders.records import orders_by_ids
from core.db import create_engine
from core.migrate import migrate
from tests.orders.helpers import WAW, checkout_input, new_cart, set_stock

VARIANT = 1
CODES = 'mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id, codes: ["TENOFF"]) { userErrors { code } } }'
PLACE = """mutation($input: CheckoutInput!) { checkoutComplete(input: $input) {
  order { discountCodes } userErrors { code } } }"""


async def test_an_order_keeps_the_codes_it_was_placed_with(gql: Any, engine: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO promotions (code, description, kind, value, product_ids, category_ids, channels, active) "
                "VALUES ('TENOFF', 'ten off', 'percentage', 10, '[]', '[]', '[]', true)"
            )
        )
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, {}, [(VARIANT, 1)])
    await gql.data(CODES, {"id": cart})
    payload = (await gql.data(PLACE, {"input": checkout_input(cart, "codes")}))["checkoutComplete"]
    assert payload == {"order": {"discountCodes": ["TENOFF"]}, "userErrors": []}
    async with engine.connect() as conn:
        assert (await conn.execute(select(OrderRow.discount_codes))).scalar_one() == ["TENOFF"]


async def test_orders_placed_before_the_json_column_keep_their_codes_after_0071(tmp_path: Any) -> None:
    """Orders written when codes were a comma-joined string keep their codes, in order."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(engine, "0070")
        columns = (
            "owner_key, idempotency_key, cart_id, cart_version, status, channel_code, fulfillment_method, "
            "currency, subtotal, discount_total, total, tax_total, items_count, discount_codes, promotion_ids, "
            "payment_method, payment_status, amount_refunded, loyalty_points_earned, loyalty_points_redeemed, "
            "placed_at, updated_at"
        )
        values = ":id, :owner, 'c', 'c', 1, 'PLACED', 'web', 'SHIP_TO_ADDRESS', 'PLN', 10, 0, 10, 0, 1, :codes, "
        values += "'[]', 'card', 'AUTHORIZED', 0, 0, 0, :now, :now"
        insert = text(f"INSERT INTO orders (id, {columns}) VALUES ({values})")  # noqa: S608 - constants only
        async with engine.begin() as conn:
            for n, codes in enumerate(("WELCOME10,SUMMER", "")):
                await conn.execute(
                    insert, {"id": n + 1, "owner": f"cart:{n}", "codes": codes, "now": "2026-01-01 00:00:00.000000"}
                )
        await migrate(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(OrderRow.id, OrderRow.discount_codes).order_by(OrderRow.id))).all()
        assert [tuple(row) for row in rows] == [(1, ["WELCOME10", "SUMMER"]), (2, [])]
        orders = await orders_by_ids(engine, [1, 2])
        assert [orders[1].discount_codes, orders[2].discount_codes] == [("WELCOME10", "SUMMER"), ()]
    finally:
        await engine.dispose()
