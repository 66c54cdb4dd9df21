"""GraphQL documents and small helpers the cart tests share."""

from __future__ import annotations

from typing import Any

CART_FIELDS = """
  id version discountCodes updatedAt
  lines { id quantity variant { id sku } unitPrice { amount currency } total { amount currency } }
  discounts { code description amount { amount currency } }
  subtotal { amount currency } total { amount currency }
"""
PAYLOAD = f"cart {{ {CART_FIELDS} }} userErrors {{ code field message }}"

CREATE = f"mutation($lines: [CartLineInput!]) {{ cartCreate(lines: $lines) {{ {PAYLOAD} }} }}"
ADD = f"""mutation($cartId: ID!, $lines: [CartLineInput!]!, $v: Int) {{
  cartLinesAdd(cartId: $cartId, lines: $lines, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
UPDATE = f"""mutation($cartId: ID!, $lines: [CartLineUpdateInput!]!, $v: Int) {{
  cartLinesUpdate(cartId: $cartId, lines: $lines, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
REMOVE = f"""mutation($cartId: ID!, $lineIds: [ID!]!, $v: Int) {{
  cartLinesRemove(cartId: $cartId, lineIds: $lineIds, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
CODES = f"""mutation($cartId: ID!, $codes: [String!]!, $v: Int) {{
  cartDiscountCodesUpdate(cartId: $cartId, codes: $codes, expectedVersion: $v) {{ {PAYLOAD} }} }}"""
ATTACH = f"mutation($cartId: ID!) {{ cartAttachToCustomer(cartId: $cartId) {{ {PAYLOAD} }} }}"
READ = f"query($id: ID!) {{ cart(id: $id) {{ {CART_FIELDS} }} }}"

VARIANTS = """{ products(first: 60) { edges { node { variants { id sku quantityAvailable price { amount } } } } } }"""


async def variants(gql: Any, *, min_available: int = 1) -> list[dict[str, Any]]:
    """Published variants with at least `min_available` in stock, in catalog order."""
    data = await gql.data(VARIANTS)
    found = [v for e in data["products"]["edges"] for v in e["node"]["variants"]]
    return [v for v in found if v["quantityAvailable"] >= min_available]


def line(variant: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
    return {"variantId": variant["id"], "quantity": quantity}


async def mutate(
    gql: Any, document: str, variables: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The payload of the one mutation in `document`."""
    data = await gql.data(document, variables, headers=headers or {})
    return next(iter(data.values()))


def quantities(cart: dict[str, Any]) -> dict[str, int]:
    return {line["variant"]["sku"]: line["quantity"] for line in cart["lines"]}
