"""Who may run what, through the real app: one row per operation, one column per role.

To cover a new operation add a `Row` to `MATRIX`: the document, a builder for its variables
(from the `World` of seeded ids and signed-in people) and the expectation per role.
`test_every_root_field_has_a_matrix_row` fails the suite for a Query/Mutation field with no row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql import parse
from graphql.language import FieldNode, OperationDefinitionNode

from commerce.catalog import service as catalog
from commerce.customers import service as customers
from commerce.loyalty import service as loyalty
from core.ids import to_global_id
from gateway.runtime import Runtime
from tests.conftest import CompilerSpy

ROLES = ("anonymous", "customer_a", "customer_b", "staff_waw", "staff_krk", "agent", "dpo", "admin", "integration")
ALLOW = "allow"
EMPTY = "empty"  # allowed, and answers null: e.g. `me` for someone who is not a customer
DENY = "deny"  # FORBIDDEN when signed in, UNAUTHENTICATED when anonymous; no data either way
CHANNEL = "channel"  # refused before anything runs: HTTP 403 CHANNEL_NOT_ALLOWED, the role may not name the channel
# Who may name an operators' channel ([channels] in policies/access.toml); everyone else is refused there.
CHANNEL_ROLES = {"store": ("staff_waw", "staff_krk", "admin"), "call-center": ("agent", "admin")}


def everyone(expect: str = ALLOW) -> dict[str, str]:
    return dict.fromkeys(ROLES, expect)


def only(*roles: str) -> dict[str, str]:
    return {role: ALLOW if role in roles else DENY for role in ROLES}


def in_channel(channel: str, expect: dict[str, str]) -> dict[str, str]:
    """A row sent with `X-Channel: channel`: whoever may not name it is refused before the row runs."""
    return {role: wanted if role in CHANNEL_ROLES[channel] else CHANNEL for role, wanted in expect.items()}


def at_till(expect: dict[str, str]) -> dict[str, str]:
    return in_channel("store", expect)


@dataclass
class World:
    """Seeded ids and one signed-in person per role (customers A and B are two different people)."""

    headers: dict[str, dict[str, str]]
    product_id: str
    customer_a_key: str = "1001"
    customer_b_key: str = "1002"
    extra: dict[str, Any] = field(default_factory=dict)  # for rows that need more (carts, orders, ...)
    _emails: int = 0

    def fresh_email(self) -> str:
        self._emails += 1
        return f"new-{self._emails}@example.com"

    @property
    def customer_a_id(self) -> str:
        return to_global_id("Customer", self.customer_a_key)

    @property
    def customer_b_id(self) -> str:
        return to_global_id("Customer", self.customer_b_key)


@dataclass(frozen=True)
class Row:
    name: str
    document: str
    variables: Callable[[World], dict[str, Any]]
    expect: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"X-Channel": "store"}
    # False where reading changes what the next read sees (the access log records each read), so
    # the two executors cannot be compared on the same data.
    repeatable: bool = True


def _no_vars(world: World) -> dict[str, Any]:
    return {}


CART_ADD = """mutation($id: ID!, $v: ID!) { cartLinesAdd(cartId: $id, lines: [{variantId: $v, quantity: 1}]) {
    cart { id } userErrors { code } } }"""
CART_CREATE = "mutation($v: ID!) { cartCreate(lines: [{variantId: $v, quantity: 1}]) { cart { id } } }"
CHECKOUT = """mutation($cart: ID!, $loc: ID) { checkoutComplete(input: {cartId: $cart, idempotencyKey: "matrix",
    fulfillmentMethod: CLICK_AND_COLLECT, pickupLocationId: $loc, payment: {method: "card"}}) {
    order { id status } userErrors { code } } }"""
ORDER_STEP = "mutation($id: ID!) {{ {name}(orderId: $id) {{ order {{ id status }} userErrors {{ code }} }} }}"


MATRIX: list[Row] = [
    Row(
        "node: a product",
        "query($id: ID!) { node(id: $id) { id ... on Product { name } } }",
        lambda w: {"id": w.product_id},
        everyone(),
    ),
    Row("channels", "{ channels { code } }", _no_vars, everyone()),
    Row("locations", "{ locations { code } }", _no_vars, everyone()),
    Row("products", "{ products(first: 2) { edges { node { name } } } }", _no_vars, everyone()),
    Row("product", "query($id: ID) { product(id: $id) { name } }", lambda w: {"id": w.product_id}, everyone()),
    Row(
        "products: sorted, with facets",
        """{ products(first: 2, sortKey: PRICE, reverse: true) { edges { node { name availableForSale
        priceRange { min { amount } } media { url } options { name } variants { compareAtPrice { amount }
        selectedOptions { name value } } } } facets { categories { count } inStockAtStores { count } } } }""",
        _no_vars,
        everyone(),
    ),
    Row("collections", "{ collections { edges { node { handle } } } }", _no_vars, everyone()),
    Row(
        "collection",
        '{ collection(handle: "sale") { title products(first: 2) { edges { node { name } } } } }',
        _no_vars,
        everyone(),
    ),
    # customers: A's data is A's, and operators' (staff only at the till)
    Row("me", "{ me { id email } }", _no_vars, {**everyone(EMPTY), "customer_a": ALLOW, "customer_b": ALLOW}),
    Row(
        "customer: A's profile online",
        "query($id: ID!) { customer(id: $id) { id email consents { purpose } cart { id } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's profile at the till",
        "query($id: ID!) { customer(id: $id) { id email } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "node: A's customer",
        "query($id: ID!) { node(id: $id) { id ... on Customer { email } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customers: A and B",
        "query($ids: [ID!]!) { customers(ids: $ids) { id email } }",
        lambda w: {"ids": [w.customer_a_id, w.customer_b_id]},
        only("agent", "dpo", "admin"),
    ),
    Row(
        "customerByEmail",
        "query($e: String!) { customerByEmail(email: $e) { id lastName } }",
        lambda w: {"e": w.extra["email_a"]},
        only("agent", "dpo", "admin"),
    ),
    Row(
        "customersByPhone",
        "query($p: String!) { customersByPhone(phone: $p) { id } }",
        lambda w: {"p": "+48 600 100 200"},
        only("agent", "dpo", "admin"),
    ),
    Row(
        "customerRegister",
        """mutation($e: String!) { customerRegister(input: {email: $e, password: "long-enough-pw",
        firstName: "N", lastName: "M"}) { customer { id email } userErrors { code } } }""",
        lambda w: {"e": w.fresh_email()},
        only("anonymous"),
    ),
    Row(
        "customerAccessTokenCreate",
        """mutation($e: String!) { customerAccessTokenCreate(email: $e,
        password: "password-a") { accessToken { expiresAt } userErrors { code } } }""",
        lambda w: {"e": w.extra["email_a"]},
        only("anonymous", "customer_a", "customer_b"),
    ),
    Row(
        "consentSet for oneself",
        """mutation { consentSet(purpose: "MARKETING_EMAIL", granted: true) {
        consents { purpose granted } userErrors { code } } }""",
        _no_vars,
        only("customer_a", "customer_b"),
    ),
    Row(
        "consentSet on A's behalf",
        """mutation($id: ID!) { consentSet(purpose: "MARKETING_SMS", granted: false,
        customerId: $id) { consents { purpose } userErrors { code } } }""",
        lambda w: {"id": w.customer_a_id},
        only("agent", "admin"),
    ),
    Row(
        "customerUpdate for oneself",
        """mutation { customerUpdate(input: {firstName: "Adela"}) {
        customer { id firstName } userErrors { code } } }""",
        _no_vars,
        only("customer_a", "customer_b"),
    ),
    Row(
        "customerUpdate on A's behalf",
        """mutation($id: ID!) { customerUpdate(input: {lastName: "Nowak-Kowalska"}, customerId: $id) {
        customer { id lastName } userErrors { code } } }""",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo"),
    ),
    Row(
        "customerAddressAdd",
        """mutation { customerAddressAdd(input: {name: "N", line1: "Prosta 1",
        postalCode: "00-001", city: "Warszawa", country: "PL"}) { customer { id } userErrors { code } } }""",
        _no_vars,
        only("customer_a", "customer_b"),
    ),
    # account security: a token argument is its own capability; a password change is one's own
    Row(
        "customerAccessTokenDelete",
        'mutation { customerAccessTokenDelete(token: "not-a-token") { deletedAccessToken userErrors { code } } }',
        _no_vars,
        only("anonymous", "customer_a", "customer_b"),
    ),
    Row(
        "customerAccessTokenRenew",
        """mutation { customerAccessTokenRenew(customerAccessToken: "not-a-token") {
        accessToken { token } userErrors { code } } }""",
        _no_vars,
        only("anonymous", "customer_a", "customer_b"),
    ),
    Row(
        "customerPasswordChange",
        """mutation { customerPasswordChange(currentPassword: "not-the-password", newPassword: "a new password") {
        accessToken { token } userErrors { code } } }""",
        _no_vars,
        only("customer_a", "customer_b"),
    ),
    Row(
        "customerPasswordResetRequest",
        'mutation { customerPasswordResetRequest(email: "nobody@example.com") { userErrors { code } } }',
        _no_vars,
        only("anonymous", "customer_a", "customer_b"),
    ),
    Row(
        "customerPasswordReset",
        """mutation { customerPasswordReset(token: "not-a-reset-token-0123456789", password: "a new password") {
        customer { id } userErrors { code } } }""",
        _no_vars,
        only("anonymous", "customer_a", "customer_b"),
    ),
    # carts: a guest cart's id is its capability; a customer's cart is theirs, their agent's and
    # store staff's at the till (to read and change), and the DPO's and admins' (to read only)
    Row(
        "cart: a guest cart",
        "query($id: ID!) { cart(id: $id) { id lines { quantity } } }",
        lambda w: {"id": w.extra["guest_cart"]},
        {**everyone(), "integration": DENY},  # a system has no business with carts
    ),
    Row(
        "cart: A's cart online",
        "query($id: ID!) { cart(id: $id) { id lines { quantity } } }",
        lambda w: {"id": w.extra["cart_a"]},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "cart: A's cart at the till",
        "query($id: ID!) { cart(id: $id) { id } }",
        lambda w: {"id": w.extra["cart_a"]},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "node: A's cart",
        "query($id: ID!) { node(id: $id) { id ... on Cart { lines { quantity } } } }",
        lambda w: {"id": w.extra["cart_a"]},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's cart, the other way to read it (agrees with cart(id))",
        "query($id: ID!) { customer(id: $id) { cart { id lines { quantity } } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's cart at the till",
        "query($id: ID!) { customer(id: $id) { cart { id } } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "customerByEmail: A's cart",
        "query($e: String!) { customerByEmail(email: $e) { cart { id } } }",
        lambda w: {"e": w.extra["email_a"]},
        only("agent", "dpo", "admin"),
    ),
    Row(
        "node: a line of A's cart is not a node",
        "query($id: ID!) { node(id: $id) { id } }",
        lambda w: {"id": w.extra["cart_a_line"]},
        everyone(EMPTY),
    ),
    Row(
        "me: my cart",
        "{ me { id cart { id } } }",
        _no_vars,
        {**everyone(EMPTY), "customer_a": ALLOW, "customer_b": ALLOW},
    ),
    Row(
        "cartCreate online",
        "mutation { cartCreate { cart { id } userErrors { code } } }",
        _no_vars,
        only("anonymous", "customer_a", "customer_b", "agent"),
    ),
    Row(
        "cartCreate at the till",
        "mutation { cartCreate { cart { id } userErrors { code } } }",
        _no_vars,
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "cartLinesAdd to a guest cart",
        CART_ADD,
        lambda w: {"id": w.extra["guest_cart"], "v": w.extra["variant"]},
        only("anonymous", "customer_a", "customer_b", "agent"),
    ),
    Row(
        "cartLinesAdd to A's cart",
        CART_ADD,
        lambda w: {"id": w.extra["cart_a"], "v": w.extra["variant"]},
        only("customer_a", "agent"),
    ),
    Row(
        "cartLinesAdd to A's cart at the till",
        CART_ADD,
        lambda w: {"id": w.extra["cart_a"], "v": w.extra["variant"]},
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "cartLinesUpdate on A's cart",
        """mutation($id: ID!) { cartLinesUpdate(cartId: $id,
        lines: [{lineId: "Q2FydExpbmU6OTk5OTk5", quantity: 1}]) { cart { id } userErrors { code } } }""",
        lambda w: {"id": w.extra["cart_a"]},
        only("customer_a", "agent"),
    ),
    Row(
        "cartLinesRemove on A's cart",
        """mutation($id: ID!) { cartLinesRemove(cartId: $id,
        lineIds: ["Q2FydExpbmU6OTk5OTk5"]) { cart { id } userErrors { code } } }""",
        lambda w: {"id": w.extra["cart_a"]},
        only("customer_a", "agent"),
    ),
    Row(
        "cartDiscountCodesUpdate on A's cart",
        """mutation($id: ID!) { cartDiscountCodesUpdate(cartId: $id,
        codes: ["WELCOME10"]) { cart { id } userErrors { code } } }""",
        lambda w: {"id": w.extra["cart_a"]},
        only("customer_a", "agent"),
    ),
    # loyalty: A's points are A's (and their agent's, the DPO's, an admin's, store staff's at the till)
    Row(
        "customer: A's loyalty online",
        """query($id: ID!) { customer(id: $id) { loyalty { cardNumber balance tier pointsToNextTier
        transactions { edges { node { kind points } } } } } }""",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's loyalty at the till",
        "query($id: ID!) { customer(id: $id) { loyalty { cardNumber balance tier } } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "me: my loyalty",
        "{ me { loyalty { balance transactions { edges { node { points } } } } } }",
        _no_vars,
        {**everyone(EMPTY), "customer_a": ALLOW, "customer_b": ALLOW},
    ),
    Row(
        "customer: A's recommendations online",
        "query($id: ID!) { customer(id: $id) { recommendations(first: 3) { id name } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's recommendations at the till",
        "query($id: ID!) { customer(id: $id) { recommendations { id } } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "customer: A's personal offers online",
        "query($id: ID!) { customer(id: $id) { offers { description code } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "customer: A's personal offers at the till",
        "query($id: ID!) { customer(id: $id) { offers { description } } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "customerByLoyaltyCard at the till",
        "query($n: String!) { customerByLoyaltyCard(cardNumber: $n) { id loyalty { balance } } }",
        lambda w: {"n": w.extra["card_a"]},
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "customerByLoyaltyCard online",
        "query($n: String!) { customerByLoyaltyCard(cardNumber: $n) { id } }",
        lambda w: {"n": w.extra["card_a"]},
        only("agent"),
    ),
    Row(
        "loyaltyAdjust on A",
        """mutation($id: ID!) { loyaltyAdjust(customerId: $id, points: 5, reason: "goodwill") {
        loyalty { balance } userErrors { code } } }""",
        lambda w: {"id": w.customer_a_id},
        only("agent", "admin"),
    ),
    Row(
        "cartAttachToCustomer of a guest cart",
        """mutation($id: ID!) { cartAttachToCustomer(cartId: $id) {
        cart { id } userErrors { code } } }""",
        lambda w: {"id": next(w.extra["spare_guest_carts"])},
        only("customer_a", "customer_b"),
    ),
    # orders: A's order is A's, its store's staff's (ST-WAW), and operators'; each step names who may run it
    Row(
        "order: A's order",
        "query($id: ID!) { order(id: $id) { id status lines { sku } } }",
        lambda w: {"id": w.extra["order_a"]},
        only("customer_a", "staff_waw", "agent", "dpo", "admin", "integration"),
    ),
    Row(
        "order: A's order at another store's till",
        "query($id: ID!) { order(id: $id) { id status } }",
        lambda w: {"id": w.extra["order_a"]},
        at_till(only("staff_waw", "staff_krk", "admin")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "orders: ST-WAW's pickups",
        "query($loc: ID!) { orders(filter: {pickupLocationId: $loc}) { edges { node { id status } } } }",
        lambda w: {"loc": to_global_id("Location", 2)},
        only("staff_waw", "agent", "admin"),
    ),
    Row(
        "salesReport: every store",
        "query($from: DateTime!, $to: DateTime!) { salesReport(from: $from, to: $to) { rows { channel } } }",
        lambda w: {"from": "2026-01-01T00:00:00+00:00", "to": "2026-02-01T00:00:00+00:00"},
        only("admin"),
    ),
    Row(
        "salesReport: ST-WAW",
        "query($from: DateTime!, $to: DateTime!, $loc: ID) { salesReport(from: $from, to: $to, locationId: $loc) { rows { channel } } }",
        lambda w: {
            "from": "2026-01-01T00:00:00+00:00",
            "to": "2026-02-01T00:00:00+00:00",
            "loc": to_global_id("Location", 2),
        },
        only("staff_waw", "admin"),
    ),
    Row(
        "customer: A's orders",
        "query($id: ID!) { customer(id: $id) { orders { edges { node { id } } } } }",
        lambda w: {"id": w.customer_a_id},
        only("customer_a", "agent", "dpo", "admin"),
    ),
    Row(
        "checkoutComplete online",
        CHECKOUT,
        lambda w: {"cart": next(w.extra["spare_guest_carts"]), "loc": to_global_id("Location", 2)},
        only("anonymous", "customer_a", "customer_b", "agent"),
    ),
    Row(
        "checkoutComplete at the till",
        CHECKOUT,
        lambda w: {"cart": next(w.extra["spare_guest_carts"]), "loc": to_global_id("Location", 2)},
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "cartCreate for A at the till",
        "mutation($id: ID!) { cartCreate(customerId: $id) { cart { id } userErrors { code } } }",
        lambda w: {"id": w.customer_a_id},
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    Row(
        "cartCreate for A in the call center",
        "mutation($id: ID!) { cartCreate(customerId: $id) { cart { id } userErrors { code } } }",
        lambda w: {"id": w.customer_a_id},
        in_channel("call-center", only("agent")),
        headers={"X-Channel": "call-center"},
    ),
    Row(
        "orderMarkReadyForPickup of A's ST-WAW order",
        ORDER_STEP.format(name="orderMarkReadyForPickup"),
        lambda w: {"id": w.extra["order_a"]},
        only("staff_waw", "admin"),
    ),
    Row(
        "orderConfirmPickup of A's ST-WAW order",
        ORDER_STEP.format(name="orderConfirmPickup"),
        lambda w: {"id": w.extra["order_a"]},
        only("staff_waw", "admin"),
    ),
    Row(
        "orderMarkShipped of A's shipped order",
        ORDER_STEP.format(name="orderMarkShipped"),
        lambda w: {"id": w.extra["order_a_shipped"]},
        only("admin", "integration"),
    ),
    Row(
        "orderCancel of A's order",
        ORDER_STEP.format(name="orderCancel"),
        lambda w: {"id": w.extra["order_a"]},
        only("customer_a", "agent", "admin"),
    ),
    Row(
        "orderReturnLines of A's order at ST-WAW",
        """mutation($id: ID!, $line: ID!, $loc: ID!) { orderReturnLines(orderId: $id,
        lines: [{orderLineId: $line, quantity: 1}], locationId: $loc) { order { id status } userErrors { code } } }""",
        lambda w: {"id": w.extra["order_a"], "line": w.extra["order_a_line"], "loc": to_global_id("Location", 2)},
        only("staff_waw", "agent", "admin"),
    ),
    Row(
        "orderExchange at the till",
        """mutation($id: ID!, $line: ID!, $cart: ID!) { orderExchange(orderId: $id,
        lines: [{orderLineId: $line, quantity: 1}], cartId: $cart, idempotencyKey: "x", payment: {method: "card"}) {
        order { id } userErrors { code } } }""",
        lambda w: {
            "id": w.extra["order_a"],
            "line": w.extra["order_a_line"],
            "cart": next(w.extra["spare_guest_carts"]),
        },
        at_till(only("staff_waw", "staff_krk")),
        headers={"X-Channel": "store"},
    ),
    # inventory: the warehouse/ERP system (and an administrator) set on-hand counts
    Row(
        "stockSync",
        """mutation($sku: String!) { stockSync(levels: [{sku: $sku, locationCode: "WH-STRYKOW", onHand: 50}]) {
        updated userErrors { code } } }""",
        lambda w: {"sku": w.extra["sku"]},
        only("admin", "integration"),
    ),
]


# data-subject requests: the DPO only (each row gets its own database, so erasing A is harmless)
DSR_FIELDS = "request { id status customerId export retained { category } } userErrors { code }"
MATRIX += [
    Row("retentionRules", "{ retentionRules { category onErasure } }", _no_vars, only("dpo", "admin")),
    Row(
        "customerAccessLog of A",
        "query($id: ID!) { customerAccessLog(customerId: $id) { operation outcome } }",
        lambda w: {"id": w.customer_a_id},
        only("dpo"),
        repeatable=False,
    ),
    Row(
        "dataSubjectRequests",
        "{ dataSubjectRequests(first: 5) { id kind status customerId } }",
        _no_vars,
        only("dpo"),
    ),
    Row(
        "dataSubjectExport of A",
        f"mutation($id: ID!) {{ dataSubjectExport(customerId: $id) {{ {DSR_FIELDS} }} }}",
        lambda w: {"id": w.customer_a_id},
        only("dpo"),
    ),
    Row(
        "dataSubjectErase of A",
        f"mutation($id: ID!) {{ dataSubjectErase(customerId: $id) {{ {DSR_FIELDS} }} }}",
        lambda w: {"id": w.customer_a_id},
        only("dpo"),
    ),
    Row(
        "dataSubjectRequestExtend of A's request",
        """mutation($id: ID!) { dataSubjectRequestExtend(requestId: $id, reason: "Many records to collect.") {
        request { id dueAt extensionReason } userErrors { code } } }""",
        lambda w: {"id": w.extra["request_a"]},
        only("dpo"),
    ),
    Row(
        "node: A's data-subject request",
        "query($id: ID!) { node(id: $id) { id ... on DataSubjectRequest { status } } }",
        lambda w: {"id": w.extra["request_a"]},
        only("dpo"),
    ),
]


def _root_fields(document: str) -> set[tuple[str, str]]:
    found = set()
    for definition in parse(document).definitions:
        if isinstance(definition, OperationDefinitionNode):
            root = definition.operation.value.capitalize()
            found |= {(root, s.name.value) for s in definition.selection_set.selections if isinstance(s, FieldNode)}
    return found


def role_headers(token_for, w: World) -> dict[str, dict[str, str]]:
    """One signed-in person per role; customers A and B are `w`'s two customers."""
    return {
        "anonymous": {},
        "customer_a": token_for("customer", subject=w.customer_a_key),
        "customer_b": token_for("customer", subject=w.customer_b_key),
        "staff_waw": token_for("staff", subject="staff-waw", location="ST-WAW"),
        "staff_krk": token_for("staff", subject="staff-krk", location="ST-KRK"),
        "agent": token_for("agent", subject="agent-1"),
        "dpo": token_for("dpo", subject="dpo-1"),
        "admin": token_for("admin", subject="admin-1"),
        "integration": token_for("integration", subject="erp-1"),
    }


async def _register(runtime: Runtime, email: str, password: str, phone: str) -> str:
    services = runtime.services
    registration = customers.Registration(
        email=email, password=password, first_name="Ada", last_name="Nowak", phone=phone
    )
    return str(await customers.register(services.engine, services.vault, services.clock, registration))


async def _cart(gql: Any, variant: str, headers: dict[str, str]) -> str:
    body = await gql.execute(CART_CREATE, {"v": variant}, headers=headers)
    return body["data"]["cartCreate"]["cart"]["id"]


@pytest.fixture
async def world(runtime: Runtime, token_for, gql) -> World:
    products, _ = await catalog.page_products(runtime.services.engine, catalog.ProductQuery(), first=1, after_id=None)
    w = World(
        headers={},
        product_id=to_global_id("Product", products[0].id),
        customer_a_key=await _register(runtime, "a@example.com", "password-a", "+48 600 100 200"),
        customer_b_key=await _register(runtime, "b@example.com", "password-b", "+48 600 100 300"),
        extra={"email_a": "a@example.com"},
    )
    w.headers = role_headers(token_for, w)
    services = runtime.services
    subject_a = (await customers.subjects_by_ids(services.engine, [int(w.customer_a_key)]))[int(w.customer_a_key)]
    w.extra["card_a"] = await loyalty.card_number(
        services.engine, services.vault, int(w.customer_a_key), subject_a, services.clock.now()
    )
    variants = await catalog.variants_by_product_ids(runtime.services.engine, [products[0].id])
    w.extra["variant"] = to_global_id("ProductVariant", variants[products[0].id][0].id)
    await _orders_of_a(runtime, gql, w)  # before A's cart: an order closes the cart it was placed from
    w.extra["sku"] = variants[products[0].id][0].sku
    w.extra["guest_cart"] = await _cart(gql, w.extra["variant"], {})
    w.extra["cart_a"] = await _cart(gql, w.extra["variant"], w.headers["customer_a"])
    lines = await gql.data(
        "query($id: ID!) { cart(id: $id) { lines { id } } }", {"id": w.extra["cart_a"]}, headers=w.headers["customer_a"]
    )
    w.extra["cart_a_line"] = lines["cart"]["lines"][0]["id"]
    w.extra["spare_guest_carts"] = iter([await _cart(gql, w.extra["variant"], {}) for _ in range(2 * len(ROLES))])
    requests = runtime.services.requests
    subject = (await customers.subjects_by_ids(runtime.services.engine, [int(w.customer_a_key)]))[int(w.customer_a_key)]
    opened = await requests.open("EXPORT", customer_key=int(w.customer_a_key), subject_id=subject, requested_by="dpo-1")
    w.extra["request_a"] = to_global_id("DataSubjectRequest", opened.id)
    return w


async def _orders_of_a(runtime: Runtime, gql: Any, w: World) -> None:
    """A's click & collect order at ST-WAW, then A's shipped order (plenty of stock for both)."""
    from sqlalchemy import update

    from commerce.inventory.models import StockLevel
    from core.db import writer

    async with writer(runtime.services.engine).begin() as conn:
        await conn.execute(update(StockLevel).values(on_hand=1000, reserved=0))
    a = w.headers["customer_a"]
    first = await _cart(gql, w.extra["variant"], a)
    collect = await gql.data(CHECKOUT, {"cart": first, "loc": to_global_id("Location", 2)}, headers=a)
    order = collect["checkoutComplete"]["order"]
    w.extra["order_a"] = order["id"]
    lines = await gql.data("query($id: ID!) { order(id: $id) { lines { id } } }", {"id": order["id"]}, headers=a)
    w.extra["order_a_line"] = lines["order"]["lines"][0]["id"]
    cart = await _cart(gql, w.extra["variant"], a)
    shipped = await gql.data(
        """mutation($cart: ID!) { checkoutComplete(input: {cartId: $cart, idempotencyKey: "ship",
        fulfillmentMethod: SHIP_TO_ADDRESS, payment: {method: "card"}, shippingAddress: {name: "A", line1: "Prosta 1",
        postalCode: "00-001", city: "Warszawa", country: "PL"}}) { order { id } userErrors { code } } }""",
        {"cart": cart},
        headers=a,
    )
    w.extra["order_a_shipped"] = shipped["checkoutComplete"]["order"]["id"]


@pytest.mark.parametrize("row", [pytest.param(row, id=row.name) for row in MATRIX])
async def test_each_role_may_or_may_not_run_the_operation(row: Row, gql, world: World) -> None:
    await assert_matrix_row(gql, world, row)


async def assert_matrix_row(gql: Any, world: World, row: Row) -> None:
    """Every role's expectation for `row`; one database for the row keeps the matrix fast."""
    wrong = []
    for role in ROLES:
        try:
            await assert_row(gql, world, row, role)
        except AssertionError as failure:
            wrong.append(f"{role} (expected {row.expect[role]}): {failure}")
    assert not wrong, "\n".join(wrong)


async def assert_row(gql: Any, world: World, row: Row, role: str) -> dict[str, Any]:
    """Run `row` as `role`: allowed means no errors and data; denied means the right code and no data."""
    headers = {**world.headers[role], **row.headers}
    if row.expect[role] == CHANNEL:
        response = await gql.post(row.document, row.variables(world), headers=headers)
        assert response.status_code == 403, response.text
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["CHANNEL_NOT_ALLOWED"], response.text
        assert "data" not in response.json(), f"data leaked on refusal: {response.text}"
        return dict(response.json())
    body = await gql.execute(row.document, row.variables(world), headers=headers)
    errors = body.get("errors") or []
    if row.expect[role] == ALLOW:
        assert not errors, errors
        assert all(value is not None for value in body["data"].values()), body
        return body
    if row.expect[role] == EMPTY:
        assert not errors, errors
        assert all(value is None for value in body["data"].values()), body
        return body
    wanted = "UNAUTHENTICATED" if role == "anonymous" else "FORBIDDEN"
    assert errors and {e["extensions"]["code"] for e in errors} == {wanted}, body
    data = body.get("data") or {}
    assert all(value is None for value in data.values()), f"data leaked on denial: {body}"
    return body


def test_every_root_field_has_a_matrix_row(runtime: Runtime) -> None:
    schema = runtime.executor.graphql_schema
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    fields = {(t.name, name) for t in roots for name in t.fields}
    covered = set().union(*(_root_fields(row.document) for row in MATRIX))
    missing = sorted(f"{t}.{f}" for t, f in fields - covered)
    assert not missing, f"add a MATRIX row for: {missing}"


def test_every_matrix_row_names_every_role() -> None:
    for row in MATRIX:
        assert set(row.expect) == set(ROLES), row.name


def test_every_row_in_an_operators_channel_is_refused_to_whoever_may_not_name_it() -> None:
    for row in MATRIX:
        refused = {role for role, wanted in row.expect.items() if wanted == CHANNEL}
        channel = row.headers.get("X-Channel", "web")
        assert refused == set(ROLES) - set(CHANNEL_ROLES.get(channel, ROLES)), row.name


def test_every_root_field_has_an_access_rule(runtime: Runtime) -> None:
    from schema.authorization import validate_policy

    assert runtime.services.policy is not None
    report = validate_policy(runtime.services.policy, runtime.executor.graphql_schema)
    assert report.uncovered == (), f"add rules to policies/access.toml for: {report.uncovered}"


@pytest.fixture
async def gql_interpreted(runtime: Runtime) -> Any:
    """A second gateway on the same database with the compiled query path off (graphql-core only)."""
    import httpx

    from gateway.app import create_app
    from gateway.runtime import build_runtime
    from tests.conftest import GraphQLClient

    plain = build_runtime(runtime.settings.replace(compiled_queries=False), runtime.services.clock)
    assert plain.executor.compiler is None and runtime.executor.compiler is not None
    app = create_app(plain.settings, runtime=plain)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield GraphQLClient(client)
    await plain.aclose()


def _is_query(document: str) -> bool:
    definition = parse(document).definitions[0]
    return isinstance(definition, OperationDefinitionNode) and definition.operation.value == "query"


QUERY_ROWS = [row for row in MATRIX if _is_query(row.document) and row.repeatable]


async def test_the_compiled_query_path_answers_every_role_exactly_as_graphql_core(
    gql, gql_interpreted, runtime: Runtime, world: World
) -> None:
    """Same bodies, errors included, with compiled queries on and off: the fast path bypasses no guard."""
    different = []
    for row in QUERY_ROWS:
        for role in ROLES:
            if row.expect[role] == CHANNEL:  # refused before either executor runs
                continue
            headers = {**world.headers[role], **row.headers}
            compiled = await gql.execute(row.document, row.variables(world), headers=headers)
            interpreted = await gql_interpreted.execute(row.document, row.variables(world), headers=headers)
            if compiled != interpreted:
                different.append(f"{row.name} as {role}: compiled {compiled} != graphql-core {interpreted}")
    assert not different, "\n".join(different)
    executor = runtime.executor  # and the compiled path did answer them, rather than hand them to graphql-core
    not_compiled = [
        r.name for r in QUERY_ROWS if executor.compiler.plan_for(executor.prepare(r.document, None)) is None
    ]
    assert not not_compiled, not_compiled


AUDITED_ROLES = ("staff_waw", "staff_krk", "agent", "dpo", "admin")  # the policy's [audit] roles


async def _audited_by(runtime: Runtime, request: Awaitable[Any]) -> tuple[Any, list[tuple[str, ...]]]:
    """One request's answer, and the audit records it appended (what they say, not when or under which trace)."""
    from sqlalchemy import func, select

    from vault.audit_models import AuditRecord

    engine = runtime.services.engine
    async with engine.connect() as conn:
        last = (await conn.execute(select(func.coalesce(func.max(AuditRecord.seq), 0)))).scalar_one()
    answer = await request
    columns = (AuditRecord.actor, AuditRecord.role, AuditRecord.operation, AuditRecord.fields)
    query = select(*columns, AuditRecord.subject, AuditRecord.outcome).where(AuditRecord.seq > last)
    async with engine.connect() as conn:
        return answer, sorted(tuple(row) for row in (await conn.execute(query)).all())


async def test_the_compiled_query_path_audits_every_access_as_graphql_core(
    gql, gql_interpreted, runtime: Runtime, world: World, spy: CompilerSpy
) -> None:
    """The same audit records, role by role: where the compiled path decides a guarded field once for a
    level of objects (an unconditional grant), each object's access is still recorded, under its subject."""
    different, recorded = [], 0
    for row in QUERY_ROWS:
        for role in AUDITED_ROLES:
            if row.expect[role] == CHANNEL:  # refused before either executor runs: nothing to audit
                continue
            headers = {**world.headers[role], **row.headers}
            variables = row.variables(world)
            asked = len(spy.answered)
            _, compiled = await _audited_by(runtime, gql.execute(row.document, variables, headers=headers))
            _, interpreted = await _audited_by(
                runtime, gql_interpreted.execute(row.document, variables, headers=headers)
            )
            if spy.answered[asked:] == [True]:  # else graphql-core answered both: equal by construction
                recorded += len(compiled)
            if compiled != interpreted:
                different.append(f"{row.name} as {role}: compiled {compiled} != graphql-core {interpreted}")
    assert not different, "\n".join(different)
    assert recorded > 20  # the compiled path answered reads of customers' data: there was something to compare


async def test_an_agent_reads_every_order_of_a_customer_as_graphql_core_does(
    gql, gql_interpreted, runtime: Runtime, world: World, spy: CompilerSpy
) -> None:
    """An agent's grant on Order has no condition: the compiled path decides each Order field once for
    all the customer's orders. Same answer, and the same audit record (every field read, under the
    customer), as graphql-core's check of each field of each order."""
    document = """query($id: ID!) { customer(id: $id) { orders(first: 10) { edges { node {
        id number status total { amount } lines { sku } } } } } }"""
    variables, headers = {"id": world.customer_a_id}, world.headers["agent"]
    body, compiled = await _audited_by(runtime, gql.execute(document, variables, headers=headers))
    expected, interpreted = await _audited_by(runtime, gql_interpreted.execute(document, variables, headers=headers))
    assert spy.answered == [True]  # the compiled path answered, it did not hand over to graphql-core
    assert "errors" not in body and body == expected
    assert len(body["data"]["customer"]["orders"]["edges"]) == 2  # customer A's two orders
    assert compiled == interpreted
    order_fields = "Order.id Order.lines Order.number Order.status Order.total"
    assert ("agent-1", "agent", "query customer", order_fields, world.customer_a_key, "allowed") in compiled


async def test_a_refused_non_null_field_leaves_no_audit_record_of_a_sibling_graphql_core_never_reads(
    gql, gql_interpreted, runtime: Runtime, world: World, spy: CompilerSpy
) -> None:
    """`retentionRules` (non-null) is refused to an agent at once: graphql-core stops there and never
    reads `customer`. The compiled path has read it (and noted it) before it sees the failure: it
    hands the query to graphql-core, whose run is what the log records."""
    document = "query($id: ID!) { retentionRules { category } customer(id: $id) { email } }"
    variables, headers = {"id": world.customer_a_id}, world.headers["agent"]
    body, compiled = await _audited_by(runtime, gql.execute(document, variables, headers=headers))
    expected, interpreted = await _audited_by(runtime, gql_interpreted.execute(document, variables, headers=headers))
    assert body == expected and body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert compiled == interpreted == []  # no read of customer A's email on record
    assert spy.answered == [False]


async def test_aliases_and_fragments_do_not_reach_another_customers_data(gql, world: World) -> None:
    document = """query($a: ID!, $b: ID!, $cart: ID!) {
        mine: customer(id: $a) { ...Person }
        theirs: node(id: $b) { ... on Customer { ...Person } }
        alsoTheirs: customer(id: $b) { id }
        theirCart: node(id: $cart) { ... on Cart { lines { quantity } } }
    }
    fragment Person on Customer { email cart { id } }"""
    variables = {"a": world.customer_a_id, "b": world.customer_b_id, "cart": world.extra["cart_a"]}
    body = await gql.execute(document, variables, headers=world.headers["customer_a"])
    assert body["data"]["mine"]["email"] == "a@example.com"
    assert body["data"]["theirs"] is None and body["data"]["alsoTheirs"] is None
    assert body["data"]["theirCart"] is not None  # A's own cart
    assert {(e["path"][0], e["extensions"]["code"]) for e in body["errors"]} == {
        ("theirs", "FORBIDDEN"),
        ("alsoTheirs", "FORBIDDEN"),
    }
    as_b = await gql.execute(document, variables, headers=world.headers["customer_b"])
    assert as_b["data"]["theirCart"] is None and "a@example.com" not in str(as_b)


async def test_an_order_that_is_not_yours_reads_as_one_that_does_not_exist(gql, world: World) -> None:
    """Order ids are sequential: a refusal that told theirs from none would let anyone count orders."""
    document = """query($id: ID!) { order(id: $id) { number }
        node(id: $id) { ... on Order { number } } }"""
    missing = to_global_id("Order", 999_999)
    for role in ("customer_b", "anonymous"):
        headers = world.headers[role]
        theirs = await gql.execute(document, {"id": world.extra["order_a"]}, headers=headers)
        none = await gql.execute(document, {"id": missing}, headers=headers)
        assert theirs["data"] == none["data"] == {"order": None, "node": None}
        assert _shape(theirs) == _shape(none) and _shape(none), role
    agent = await gql.execute(document, {"id": missing}, headers=world.headers["agent"])
    assert agent == {"data": {"order": None, "node": None}}  # who may read orders is told there is none


def _shape(body: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((str(e["path"]), e["extensions"]["code"]) for e in body.get("errors", []))
