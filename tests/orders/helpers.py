"""Shared steps for order tests: stock set by hand, carts, checkout through the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.inventory.models import StockLevel
from core.db import writer
from core.ids import to_global_id

# Seeded locations (gateway/seed.py): 1 the warehouse, 2 ST-WAW and 3 ST-KRK (click & collect), 4 ST-GDN.
WAREHOUSE, WAW, KRK, GDN = 1, 2, 3, 4
ADDRESS = {"name": "Ada Nowak", "line1": "ul. Prosta 1", "postalCode": "00-001", "city": "Warszawa", "country": "PL"}
DECLINE_CARD = "4000000000000002"
TIMEOUT_CARD = "4000000000000119"

ORDER_FIELDS = """
  id number status placedAt fulfillmentMethod reservedUntil
  channel { code }
  pickupLocation { code }
  lines { id sku name quantity quantityReturned unitPrice { amount } total { amount } taxRate taxAmount { amount } }
  subtotal { amount currency } discountTotal { amount } total { amount } taxTotal { amount }
  payment { method status amount { amount } refunded { amount } }
"""
ORDER_PAYLOAD = f"order {{ {ORDER_FIELDS} }} userErrors {{ code field message }}"
CHECKOUT = f"mutation($input: CheckoutInput!) {{ checkoutComplete(input: $input) {{ {ORDER_PAYLOAD} }} }}"
CART_CREATE = """mutation($lines: [CartLineInput!], $customerId: ID) { cartCreate(lines: $lines, customerId: $customerId) {
  cart { id version } userErrors { code field message } } }"""
READ_ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"


def step(name: str, extra: str = "") -> str:
    return f"mutation($id: ID!{extra}) {{ {name}(orderId: $id) {{ {ORDER_PAYLOAD} }} }}"


READY = step("orderMarkReadyForPickup")
PICKUP = step("orderConfirmPickup")
SHIP = step("orderMarkShipped")
CANCEL = step("orderCancel")
RETURN = f"""mutation($id: ID!, $lines: [ReturnLineInput!]!, $location: ID!) {{
  orderReturnLines(orderId: $id, lines: $lines, locationId: $location) {{ {ORDER_PAYLOAD} }} }}"""


def location_id(key: int) -> str:
    return to_global_id("Location", key)


def variant_id(key: int) -> str:
    return to_global_id("ProductVariant", key)


async def set_stock(engine: AsyncEngine, variant: int, location: int, on_hand: int, *, only_here: bool = True) -> None:
    """`on_hand` units of `variant` at `location` (and, with `only_here`, none anywhere else)."""
    async with writer(engine).begin() as conn:
        if only_here:
            await conn.execute(update(StockLevel).where(StockLevel.variant_id == variant).values(on_hand=0, reserved=0))
        await conn.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == variant, StockLevel.location_id == location)
            .values(on_hand=on_hand, reserved=0)
        )


async def stock_of(engine: AsyncEngine, variant: int, location: int) -> tuple[int, int]:
    """(on hand, reserved); (0, 0) when the location has no row for the variant."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(StockLevel.on_hand, StockLevel.reserved).where(
                    StockLevel.variant_id == variant, StockLevel.location_id == location
                )
            )
        ).first()
    return (row[0], row[1]) if row else (0, 0)


async def total_reserved(engine: AsyncEngine) -> int:
    from sqlalchemy import func

    async with engine.connect() as conn:
        return int((await conn.execute(select(func.coalesce(func.sum(StockLevel.reserved), 0)))).scalar_one())


async def new_cart(gql: Any, headers: dict[str, str], lines: list[tuple[int, int]], **kw: Any) -> str:
    body = await gql.data(
        CART_CREATE,
        {"lines": [{"variantId": variant_id(v), "quantity": q} for v, q in lines], **kw},
        headers=headers,
    )
    payload = body["cartCreate"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return str(payload["cart"]["id"])


def checkout_input(
    cart: str,
    key: str,
    method: str = "CLICK_AND_COLLECT",
    *,
    location: int | None = WAW,
    payment: str = "card",
    token: str | None = None,
    address: dict[str, Any] | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "cartId": cart,
        "idempotencyKey": key,
        "fulfillmentMethod": method,
        "payment": {"method": payment, "token": token},
    }
    if location is not None and method in ("CLICK_AND_COLLECT", "RESERVE_AND_COLLECT", "IN_STORE"):
        value["pickupLocationId"] = location_id(location)
    if address is not None:
        value["shippingAddress"] = address
    return value


async def checkout(gql: Any, headers: dict[str, str], cart: str, key: str, **kw: Any) -> dict[str, Any]:
    """The checkoutComplete payload (order and userErrors)."""
    body = await gql.data(CHECKOUT, {"input": checkout_input(cart, key, **kw)}, headers=headers)
    return dict(body["checkoutComplete"])


async def placed(gql: Any, headers: dict[str, str], cart: str, key: str, **kw: Any) -> dict[str, Any]:
    """A checkout that must succeed: the order."""
    payload = await checkout(gql, headers, cart, key, **kw)
    assert payload["userErrors"] == [], payload["userErrors"]
    return dict(payload["order"])


async def add_code(engine: AsyncEngine, code: str, percent: int, usage_limit: int | None = None) -> None:
    """A percentage discount code on everything, in every channel, used at most `usage_limit` times."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO promotions (code, description, kind, value, product_ids, category_ids, channels,"
                " usage_limit, active) VALUES (:code, :code, 'percentage', :percent, '[]', '[]', '[]', :limit, true)"
            ),
            {"code": code, "percent": percent, "limit": usage_limit},
        )
