"""checkoutComplete: a cart becomes an order, stock is held, the payment is authorized.

The flow never holds a database transaction across a call to the payment provider:

1. Read and price the cart (pricing engine), snapshot the lines, check the fulfillment: the cart
   and the variants on one connection in one read-only transaction (`ReadScope`); promotions,
   prices and scopes from the pricing cache, as the cart showed them (emptied on any change, here
   at once and elsewhere by broadcast; without a cache they are read).
2. One unit of work: lock the cart (it must still be at the version priced; it becomes
   `checking_out`), write the order as PENDING with its lines, hold stock with one conditional
   update per line, then claim promotion uses (stock rows before promotion counters, as every
   order step and compensation locks them), seal the address in the vault. Any line short
   of stock: `INSUFFICIENT_STOCK` naming every such line, and nothing at all is kept.
3. Authorize the payment (outside any transaction).
4. One unit of work: confirm (PLACED, RESERVED or, at the till, COMPLETED; the cart is closed)
   or compensate (FAILED; stock, promotion uses and the cart given back; after a timeout, a void
   call recorded with it and made after the commit, retried by `payments retry` if refused).

A crash between 2 and 4 leaves a PENDING order that `expire-reservations` fails later (and voids
the same way). A void needs the reference of what may be held: the provider's, when it answered;
when it did not (the answer timed out or was lost), the order number, which the authorization was
requested and keyed by (`PaymentRequest.reference`), so the provider finds it by that.

Idempotency: the key is scoped to the cart's owner (the customer, or the guest cart itself) and
unique per owner in the database. A retry finds the order by the key, waits while it is
PENDING, and returns it; the same key for another cart, or for this cart after it changed, is
`IDEMPOTENCY_KEY_REUSED`. Retries serialize on the cart row, so only one attempt reserves.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commerce.cart import service as carts
from commerce.cart.errors import CartNotFound
from commerce.cart.models import ACTIVE
from commerce.catalog import service as catalog
from commerce.catalog.entities import Location
from commerce.customers import service as customers
from commerce.inventory import stock
from commerce.orders import errors, mail, points
from commerce.orders import records as r
from commerce.orders.events import order_event
from commerce.orders.models import OrderLineRow, OrderReturnRow, OrderRow
from commerce.orders.unit import OrderServices, audit_action, unit_of_work
from commerce.payments import calls
from commerce.payments.calls import CallAction
from commerce.payments.provider import PaymentDeclined, PaymentError, PaymentRequest, PaymentTimeout
from commerce.pricing import service as pricing
from commerce.pricing import usage
from commerce.pricing.engine import CodeProblem, PricedCart
from commerce.pricing.tax import TaxedVariant, taxed_variants, vat_included
from core.db import Connectable, ReadScope
from core.errors import DomainError
from vault.audit import AuditEntry

__all__ = [
    "PAYMENT_METHODS",
    "PROVIDER_METHODS",
    "TILL_METHODS",
    "CheckoutRequest",
    "Invoice",
    "checkout",
    "fail_pending",
]

logger = logging.getLogger("omnigate.orders")

# Methods a customer may choose, the same in every channel. "cash" is paid at the till (IN_STORE);
# "cash_on_pickup" is paid at the till when a reserve & collect order is collected.
PROVIDER_METHODS = ("card", "blik")
TILL_METHODS = ("cash_on_pickup", "cash")  # no provider holds the money: a refund is handed out at the till
PAYMENT_METHODS = (*PROVIDER_METHODS, *TILL_METHODS)
MAX_KEY = 128
# A held code that stopped applying for one of these reasons refuses the checkout (the customer
# removes it and sees the new total); one that merely does not apply to this cart does not.
REFUSED_CODES = frozenset(CodeProblem)
ORDERS_TABLE = "orders"


@dataclass(frozen=True, slots=True)
class Invoice:
    company_name: str
    tax_id: str
    address: customers.Address


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    cart_id: str
    idempotency_key: str
    fulfillment_method: str
    payment_method: str
    channel_code: str
    currency: str
    pickup_location_id: int | None = None
    pickup_location: Location | None = None  # pickup_location_id's, when the caller has read it (spares a read)
    shipping_address: customers.Address | None = None
    invoice: Invoice | None = None
    payment_token: str | None = None
    till_location_id: int | None = None  # the store of the staff member checking out at its till
    actor: str | None = None  # the operator placing it for the customer (till, call center)
    customer_key: int | None = None  # the signed-in customer checking out: a guest cart becomes theirs first
    loyalty_points_to_redeem: int = 0
    audit: AuditEntry | None = None  # an operator placing it: recorded in the confirming transaction
    credit: Decimal = Decimal(0)  # already paid (an exchange's returned goods): only the rest is charged
    credit_from: int | None = None  # the order the credit's goods were bought in (its payment pays it back)
    exchange_return: int | None = None  # an exchange's sale: the return it is sold for, which must still be TAKEN
    language: str | None = None  # the request's Accept-Language: the confirmation email's language


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything read and decided before the unit of work that reserves."""

    cart: carts.Cart
    priced: PricedCart
    lines: list[tuple[int, carts.CartLine, str, str, Decimal]]  # index in cart, line, sku, name, tax rate
    pickup_location_id: int | None
    address: customers.Address | None
    subject_id: str | None  # the customer's vault subject (None: a guest)
    location_code: str | None = None  # the pickup location's (the stock movements name it)


class _CartMoved(Exception):
    """The cart changed between pricing and locking: price it again."""


class _KeyTaken(Exception):
    """The owner's idempotency key already names an order (found after the rollback)."""


class _Replay(Exception):
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id


class _NotCaptured(PaymentError):
    """The till's capture failed after the provider authorized: that authorization is voided by its
    own reference. The client hears the capture's error (its code and message)."""

    def __init__(self, failure: PaymentError, reference: str) -> None:
        super().__init__(str(failure))
        self.code = failure.code
        self.reference = reference


@dataclass(frozen=True, slots=True)
class _Released:
    """The order was no longer PENDING at confirmation (the expiry failed it): the void call recorded
    for the authorization that came too late, if there was one."""

    call: int | None


# ---------------------------------------------------------------- validation


def _problem(code: str, message: str, *field: str) -> errors.OrderProblem:
    return errors.OrderProblem(code, message, ["input", *field])


async def _fulfillment(
    services: OrderServices, req: CheckoutRequest
) -> tuple[int | None, str | None, customers.Address | None]:
    """The location the order is collected or sold at, its code when known, and the checked shipping address."""
    problems: list[DomainError] = []
    if not 1 <= len(req.idempotency_key) <= MAX_KEY:
        problems.append(
            _problem(
                errors.OrderErrorCode.IDEMPOTENCY_KEY_INVALID, f"Give 1 to {MAX_KEY} characters.", "idempotencyKey"
            )
        )
    if req.fulfillment_method not in r.FULFILLMENT_METHODS:
        problems.append(
            _problem(
                errors.OrderErrorCode.FULFILLMENT_METHOD_INVALID, "Unknown fulfillment method.", "fulfillmentMethod"
            )
        )
    method = req.payment_method
    if method not in PAYMENT_METHODS:
        problems.append(
            _problem(
                errors.OrderErrorCode.PAYMENT_METHOD_INVALID,
                f"Pay by {', '.join(PAYMENT_METHODS)}.",
                "payment",
                "method",
            )
        )
    elif method == "cash_on_pickup" and req.fulfillment_method != r.RESERVE_AND_COLLECT:
        problems.append(
            _problem(
                errors.OrderErrorCode.PAYMENT_METHOD_NOT_ALLOWED,
                "Cash on pickup is for reserve & collect only.",
                "payment",
                "method",
            )
        )
    elif method == "cash" and req.fulfillment_method != r.IN_STORE:
        problems.append(
            _problem(
                errors.OrderErrorCode.PAYMENT_METHOD_NOT_ALLOWED, "Cash is taken at the till only.", "payment", "method"
            )
        )
    if req.loyalty_points_to_redeem < 0:
        problems.append(
            _problem(
                errors.OrderErrorCode.INVALID_POINTS, "Points to redeem cannot be negative.", "loyaltyPointsToRedeem"
            )
        )
    address = None
    location_id: int | None = None
    location_code: str | None = None
    if req.fulfillment_method == r.SHIP_TO_ADDRESS:
        if req.shipping_address is None:
            problems.append(
                _problem(errors.OrderErrorCode.ADDRESS_REQUIRED, "A shipped order needs an address.", "shippingAddress")
            )
        else:
            try:
                address = customers.check_address(req.shipping_address)
            except DomainError as bad:
                problems.append(_problem(bad.code, str(bad), "shippingAddress", *(bad.field or ())[1:]))
    elif req.shipping_address is not None:
        problems.append(
            _problem(
                errors.OrderErrorCode.ADDRESS_NOT_ALLOWED, "Only shipped orders take an address.", "shippingAddress"
            )
        )
    if req.fulfillment_method in r.COLLECT:
        location = req.pickup_location
        if location is None or location.id != req.pickup_location_id:
            location = await _location(services, req.pickup_location_id)
        if location is None or location.kind != "STORE" or not location.click_and_collect:
            problems.append(
                _problem(
                    errors.OrderErrorCode.PICKUP_LOCATION_INVALID,
                    "Choose a store that offers click & collect.",
                    "pickupLocationId",
                )
            )
        else:
            location_id, location_code = location.id, location.code
    elif req.fulfillment_method == r.IN_STORE:
        if req.till_location_id is None:
            problems.append(
                _problem(
                    errors.OrderErrorCode.IN_STORE_AT_TILL_ONLY,
                    "In-store sales are made at a store's till.",
                    "fulfillmentMethod",
                )
            )
        elif req.pickup_location_id not in (None, req.till_location_id):
            problems.append(
                _problem(
                    errors.OrderErrorCode.PICKUP_LOCATION_INVALID,
                    "An in-store sale is the till's store.",
                    "pickupLocationId",
                )
            )
        location_id = req.till_location_id
    elif req.pickup_location_id is not None:
        problems.append(
            _problem(
                errors.OrderErrorCode.PICKUP_LOCATION_INVALID, "Only collected orders name a store.", "pickupLocationId"
            )
        )
    if problems:
        raise errors.OrderInputErrors(problems)
    return location_id, location_code, address


async def _location(services: OrderServices, location_id: int | None) -> Location | None:
    if location_id is None:
        return None
    return (await catalog.locations_by_ids(services.engine, [location_id])).get(location_id)


# ---------------------------------------------------------------- planning (reads only)


@dataclass(frozen=True, slots=True)
class _Read:
    """What step 1 reads, on one connection in one read-only transaction."""

    cart: carts.Cart
    variants: dict[int, TaxedVariant]  # published now, with the SKU and VAT each is sold with
    subject_id: str | None  # the customer's vault subject, when an address or invoice is sealed
    existing: int | None  # a closed cart: the order the idempotency key names, if any


async def _read(
    services: OrderServices, req: CheckoutRequest, address: customers.Address | None, now: datetime
) -> _Read:
    """One connection, held by nothing else meanwhile (a request never waits for a second one while it
    holds one: concurrent checkouts cannot starve the pool), ended before pricing and writing."""
    reads = ReadScope(services.engine)
    try:
        cart = await carts.get_cart(reads, req.cart_id, now=now, rules=services.cart_rules)
        if cart is None:
            raise errors.CartNotReady("No such cart (or it expired).")
        if cart.status != ACTIVE:  # placed (or being placed) from: a retry finds its order by the key
            return _Read(cart, {}, None, await _by_key(reads, carts.cart_owner(cart), req.idempotency_key))
        await _refuse_erased(reads, cart)
        variants = await taxed_variants(reads, [line.variant_id for line in cart.lines]) if cart.lines else {}
        subject = None
        if cart.customer_key is not None and (address is not None or req.invoice is not None):
            subject = (await customers.subjects_by_ids(reads, [cart.customer_key])).get(cart.customer_key)
        return _Read(cart, variants, subject, None)
    finally:
        await reads.aclose()


async def _refuse_erased(reads: ReadScope, cart: carts.Cart) -> None:
    """A cart whose customer was erased meanwhile becomes no order: it would record new personal data
    (an address, a purchase, points) about a person whose data is gone."""
    if cart.customer_key is not None and await customers.erased_among(reads, [cart.customer_key]):
        raise errors.CartNotReady(
            "This cart's customer was erased: check out as a guest.", errors.OrderErrorCode.CUSTOMER_ERASED
        )


async def _plan(
    services: OrderServices,
    req: CheckoutRequest,
    read: _Read,
    location: tuple[int | None, str | None],
    address: customers.Address | None,
    now: datetime,
) -> _Plan:
    cart = read.cart
    if not cart.lines:
        raise errors.CartNotReady("The cart is empty.", errors.OrderErrorCode.CART_EMPTY)
    if req.loyalty_points_to_redeem and cart.customer_key is None:
        raise _problem(
            errors.OrderErrorCode.LOYALTY_SIGN_IN_REQUIRED,
            "Sign in to pay with loyalty points.",
            "loyaltyPointsToRedeem",
        )
    priced = await pricing.price_lines(
        services.engine,
        cart.lines,  # (id, variant id, quantity): what pricing reads as (key, variant id, quantity)
        cart.codes,
        currency=req.currency,
        channel=req.channel_code,
        now=now,
        customer_key=cart.customer_key,
        cache=services.pricing_cache,
        loyalty_points=req.loyalty_points_to_redeem,  # the last discount, capped by the policy's share
        vault=services.vault,  # personal offers by purchase history (with consent)
    )
    variants = read.variants
    on_sale = {p.key for p in priced.lines}
    problems: list[DomainError] = []
    planned = []
    for i, line in enumerate(cart.lines):
        variant = variants.get(line.variant_id)
        if variant is None or line.id not in on_sale:
            problems.append(
                errors.OrderProblem(
                    errors.OrderErrorCode.VARIANT_NOT_AVAILABLE,
                    "This item is no longer for sale.",
                    ["cart", "lines", str(i)],
                )
            )
            continue
        planned.append((i, line, variant.sku, variant.name, variant.rate))
    for i, code in enumerate(cart.codes):
        why = priced.unapplied_codes.get(code)
        if why in REFUSED_CODES:  # accepted into the cart, but no longer good: never drop it silently
            problems.append(
                errors.OrderProblem(
                    why, f"The code {code!r} cannot be used now: remove it.", ["cart", "discountCodes", str(i)]
                )
            )
    if problems:
        raise errors.OrderInputErrors(problems)
    return _Plan(cart, priced, planned, location[0], address, read.subject_id, location[1])


# ---------------------------------------------------------------- step 2: reserve


async def _seal(
    services: OrderServices, session: AsyncSession, plan: _Plan, req: CheckoutRequest
) -> tuple[str | None, bytes | None, bytes | None]:
    """The address sealed under the customer's subject (a guest gets a subject of its own); the invoice
    under that subject's accounting-only key, which outlives an erasure for the accounting retention
    period (policies/retention.toml `invoices`) and is then shredded by the retention job."""
    if plan.address is None and req.invoice is None:
        return None, None, None
    conn = await session.connection()
    vault = services.vault
    key = await vault.open_subject(conn, plan.subject_id) if plan.subject_id else await vault.create_subject(conn)
    address = json.dumps(asdict(plan.address), ensure_ascii=False) if plan.address else None
    invoice = None
    if req.invoice is not None:
        invoice_address = customers.check_address(req.invoice.address)
        invoice = json.dumps(
            {"companyName": req.invoice.company_name, "taxId": req.invoice.tax_id, "address": asdict(invoice_address)},
            ensure_ascii=False,
        )
    accounting = await vault.open_accounting(conn, key.subject) if invoice is not None else None
    return (
        key.subject,
        vault.encrypt(key, ORDERS_TABLE, "shipping_address", address),
        vault.encrypt(accounting, ORDERS_TABLE, "invoice", invoice) if accounting is not None else None,
    )


# The hot statements, built once and run with parameters (building them costs more CPU than running them).
_BY_KEY = select(OrderRow.id).where(
    OrderRow.owner_key == bindparam("owner"), OrderRow.idempotency_key == bindparam("key")
)
_INSERT_ORDER = insert(OrderRow).returning(OrderRow.id)
_INSERT_LINES = insert(OrderLineRow).returning(OrderLineRow.id, sort_by_parameter_order=True)
_REDEEMED = (
    update(OrderRow).where(OrderRow.id == bindparam("order")).values(loyalty_points_redeemed=bindparam("points"))
)
_CONFIRM = (
    update(OrderRow)
    .where(OrderRow.id == bindparam("order"), OrderRow.status == r.PENDING)
    .values(
        status=bindparam("status"),
        payment_status=bindparam("payment"),
        payment_reference=bindparam("reference"),
        updated_at=bindparam("now"),
    )
)


_EXCHANGE_STATUS = (
    select(OrderReturnRow.exchange_status).where(OrderReturnRow.id == bindparam("return")).with_for_update()
)


async def _hold_exchange(conn: AsyncConnection, return_id: int | None) -> None:
    """An exchange's sale is reserved only while its return is TAKEN, read on the return's locked
    row. A failed attempt refunds that return on the same locked row (`service.settle_exchange`)
    unless a sale of the exchange is then PENDING or placed: so either this reservation commits
    first and the refund is not made, or the refund does and this sale is refused before anything
    is held or charged. Any other status is REFUNDED: a SOLD return's sale is replayed, not reserved."""
    if return_id is None:
        return
    status = (await conn.execute(_EXCHANGE_STATUS, {"return": return_id})).scalar_one()
    if status != r.EXCHANGE_TAKEN:
        raise errors.ExchangeAlreadyRefunded()


async def _by_key(conn: AsyncConnection | Connectable, owner: str, key: str) -> int | None:
    if isinstance(conn, AsyncConnection):
        return (await conn.execute(_BY_KEY, {"owner": owner, "key": key})).scalar()
    async with conn.connect() as read:
        return (await read.execute(_BY_KEY, {"owner": owner, "key": key})).scalar()


async def _hold_stock(
    session: AsyncSession, conn: AsyncConnection, plan: _Plan, req: CheckoutRequest, order_id: int
) -> dict[int, int]:
    """Each line's location, its stock held; raises `InsufficientStock` for every line short of it."""
    why = stock.Movement("order.reserved", str(order_id), req.actor)
    if plan.pickup_location_id is not None:
        candidates: Sequence[int] = [plan.pickup_location_id]
    else:
        candidates = await stock.allocation_order(session)
    if len(candidates) > 1:
        # Allocation order (warehouses first) is not the order every unit of work that touches stock
        # locks its rows in (order steps, stockSync: by location, then variant): lock the rows it may
        # take first, in that order, so a shipped order's lines from several places never deadlock.
        await stock.lock_levels(conn, [line.variant_id for _, line, *_ in plan.lines])
    held: dict[int, int] = {}
    problems: list[DomainError] = []
    for i, line, sku, _name, _rate in sorted(plan.lines, key=lambda p: p[1].variant_id):
        for location_id in candidates:
            known = (sku, plan.location_code) if plan.location_code and location_id == plan.pickup_location_id else None
            if await stock.reserve(conn, location_id, line.variant_id, line.quantity, why, known):
                held[line.id] = location_id
                break
        else:
            problems.append(
                errors.InsufficientStock(f"Not enough {sku} in stock for {line.quantity}.", ["cart", "lines", str(i)])
            )
    if problems:
        raise errors.OrderInputErrors(sorted(problems, key=lambda p: p.field or ()))
    return held


def _priced_lines(plan: _Plan) -> list[tuple[int, Decimal, dict[str, object]]]:
    """(cart line id, VAT, column values) per line: the snapshot with its VAT, rounded per line."""
    by_key = {p.key: p for p in plan.priced.lines}
    found = []
    for _i, line, sku, name, rate in plan.lines:
        p = by_key[line.id]
        tax = vat_included(p.total, rate, plan.priced.currency)
        found.append(
            (
                line.id,
                tax,
                {
                    "variant_id": line.variant_id,
                    "sku": sku,
                    "name": name,
                    "quantity": line.quantity,
                    "quantity_returned": 0,
                    "unit_price": p.unit_price,
                    "subtotal": p.subtotal,
                    "discount": p.discount,
                    "total": p.total,
                    "tax_rate": rate,
                    "tax_amount": tax,
                    "amount_refunded": Decimal(0),
                },
            )
        )
    return found


async def _reserve(services: OrderServices, plan: _Plan, req: CheckoutRequest, now: datetime) -> r.Order:
    """Step 2 in one unit of work; returns the PENDING order. Core statements on the unit of work's
    connection (the ORM's flush costs more CPU than the SQL, and the write lock is held meanwhile)."""
    owner = carts.cart_owner(plan.cart)
    async with unit_of_work(services) as session:
        conn = await session.connection()
        if not await carts.begin_checkout(conn, plan.cart.id, plan.cart.version, now):
            existing = await _by_key(conn, owner, req.idempotency_key)
            if existing is not None:
                raise _Replay(existing)
            raise _CartMoved()
        await _hold_exchange(conn, req.exchange_return)
        priced = plan.priced
        promotion_ids = [d.promotion_id for d in priced.discounts]
        lines = _priced_lines(plan)
        subject_id, address_sealed, invoice_sealed = await _seal(services, session, plan, req)
        values: dict[str, Any] = {
            "owner_key": owner,
            "idempotency_key": req.idempotency_key,
            "cart_id": plan.cart.id,
            "cart_version": plan.cart.version,
            "customer_key": plan.cart.customer_key,
            "subject_id": subject_id,
            "status": r.PENDING,
            "channel_code": req.channel_code,
            "fulfillment_method": req.fulfillment_method,
            "pickup_location_id": plan.pickup_location_id,
            "reserved_until": (
                now + services.reservation_ttl if req.fulfillment_method == r.RESERVE_AND_COLLECT else None
            ),
            "shipping_address_sealed": address_sealed,
            "invoice_sealed": invoice_sealed,
            "currency": priced.currency,
            "subtotal": priced.subtotal,
            "discount_total": priced.discount_total,
            "total": priced.total,
            "tax_total": sum((tax for _, tax, _ in lines), Decimal(0)),
            "items_count": sum(line.quantity for line in priced.lines),
            "discount_codes": [d.code for d in priced.discounts if d.code],
            "promotion_ids": promotion_ids,
            "payment_method": req.payment_method,
            "payment_status": r.PENDING,
            "payment_reference": None,
            "amount_refunded": Decimal(0),
            "exchange_credit": min(req.credit, priced.total),
            "credit_order_id": req.credit_from,
            "loyalty_points_earned": 0,
            "loyalty_points_redeemed": 0,
            "placed_by": req.actor,
            "placed_at": now,
            "updated_at": now,
        }
        try:
            order_id: int = (await conn.execute(_INSERT_ORDER, values)).scalar_one()
        except IntegrityError:  # the key names an earlier order of this owner's
            raise _KeyTaken() from None
        # Rows are locked in one order by every unit of work (stock, then promotion counters, then the
        # loyalty account), as the order steps and the compensations lock them: never a deadlock.
        held = await _hold_stock(session, conn, plan, req, order_id)
        if await usage.claim(
            session, promotion_ids, customer_key=plan.cart.customer_key, order_ref=r.order_number(order_id), now=now
        ):
            raise errors.DiscountUsageLimitReached(
                "A discount code has been used up meanwhile: remove it and try again.", ["cart", "discountCodes"]
            )
        # with the order, or not at all; after stock and promotions, as every order step locks them
        redeemed = await points.hold(
            session, order_id, plan.cart.customer_key, req.channel_code, req.loyalty_points_to_redeem, now, req.actor
        )
        if redeemed:
            await conn.execute(_REDEEMED, {"order": order_id, "points": redeemed})
            values["loyalty_points_redeemed"] = redeemed
        line_values = [
            {"order_id": order_id, "location_id": held[cart_line_id], **fields} for cart_line_id, _, fields in lines
        ]
        line_ids = (await conn.execute(_INSERT_LINES, line_values)).scalars().all()
        return _pending(order_id, values, [_line(i, v) for i, v in zip(line_ids, line_values, strict=True)])


def _line(line_id: int, v: dict[str, Any]) -> r.OrderLine:
    return r.OrderLine(
        line_id,
        v["variant_id"],
        v["location_id"],
        v["sku"],
        v["name"],
        v["quantity"],
        v["quantity_returned"],
        v["unit_price"],
        v["subtotal"],
        v["discount"],
        v["total"],
        v["tax_rate"],
        v["tax_amount"],
        v["amount_refunded"],
    )


def _pending(order_id: int, v: dict[str, Any], lines: list[r.OrderLine]) -> r.Order:
    """The order just written, from the values written (nothing read back)."""
    return r.Order(
        id=order_id,
        status=v["status"],
        channel_code=v["channel_code"],
        customer_key=v["customer_key"],
        subject_id=v["subject_id"],
        cart_id=v["cart_id"],
        cart_version=v["cart_version"],
        fulfillment_method=v["fulfillment_method"],
        pickup_location_id=v["pickup_location_id"],
        reserved_until=v["reserved_until"],
        shipping_address_sealed=v["shipping_address_sealed"],
        currency=v["currency"],
        subtotal=v["subtotal"],
        discount_total=v["discount_total"],
        total=v["total"],
        tax_total=v["tax_total"],
        discount_codes=tuple(v["discount_codes"]),
        promotion_ids=tuple(v["promotion_ids"]),
        payment_method=v["payment_method"],
        payment_status=v["payment_status"],
        payment_reference=v["payment_reference"],
        amount_refunded=v["amount_refunded"],
        loyalty_points_earned=v["loyalty_points_earned"],
        loyalty_points_redeemed=v["loyalty_points_redeemed"],
        placed_by=v["placed_by"],
        placed_at=v["placed_at"],
        lines=tuple(lines),
    )


# ---------------------------------------------------------------- steps 3 and 4


async def _authorize(services: OrderServices, order: r.Order, req: CheckoutRequest) -> tuple[str, str | None]:
    """The payment status and provider reference the order is confirmed with; raises `PaymentError`."""
    if req.payment_method == "cash_on_pickup":
        return r.DUE_AT_PICKUP, None
    due = order.total - req.credit
    if req.payment_method == "cash" or due <= 0:
        return r.CAPTURED, None
    payment = PaymentRequest(order.number, due, order.currency, req.payment_method, req.payment_token)
    try:
        authorization = await asyncio.wait_for(services.payments.authorize(payment), services.payment_timeout)
    except TimeoutError:
        raise PaymentTimeout("The payment provider did not answer in time; nothing was charged.") from None
    if req.fulfillment_method == r.IN_STORE:  # paid at the till: taken at once
        try:
            await services.payments.capture(authorization.reference, due)
        except PaymentError as failure:
            raise _NotCaptured(failure, authorization.reference) from None
        return r.CAPTURED, authorization.reference
    return r.AUTHORIZED, authorization.reference


def _placed_status(method: str) -> str:
    return {r.RESERVE_AND_COLLECT: r.RESERVED, r.IN_STORE: r.COMPLETED}.get(method, r.PLACED)


async def _confirm(
    services: OrderServices, order: r.Order, payment_status: str, reference: str | None, req: CheckoutRequest
) -> int | _Released:
    """Step 4, success: the loyalty points the order earned (a till sale earns at once, others 0);
    `_Released` when the order is no longer PENDING (the expiry command failed it). The customer's
    confirmation email is queued with it (a retry of the key replays the order: no second one)."""
    now = services.clock.now()
    status = _placed_status(order.fulfillment_method)
    async with unit_of_work(services) as session:
        conn = await session.connection()
        result = await conn.execute(
            _CONFIRM,
            {"order": order.id, "status": status, "payment": payment_status, "reference": reference, "now": now},
        )
        if result.rowcount != 1:  # the expiry voided by the order number; this reference it could not know
            return _Released(await _void_due(session, order.id, reference, now))
        earned = 0
        if status == r.COMPLETED:  # sold at the till: the goods leave with the customer now
            why = stock.Movement("order.sold_in_store", str(order.id), order.placed_by)
            for line in sorted(order.lines, key=lambda ln: (ln.location_id, ln.variant_id)):
                await stock.consume(session, line.location_id, line.variant_id, line.quantity, why)
            row = (await session.execute(select(OrderRow).where(OrderRow.id == order.id))).scalar_one()
            await points.earn(session, row, now)  # fulfilled at once: points earned with the sale
            earned = row.loyalty_points_earned
        await carts.end_checkout(conn, order.cart_id, ordered=True, now=now)
        await order_event(
            conn,
            order_id=order.id,
            event_type="order.placed",
            status=status,
            fulfillment_method=order.fulfillment_method,
            pickup_location_id=order.pickup_location_id,
            channel=order.channel_code,
            total=order.total,
            currency=order.currency,
            lines=[(ln.sku, ln.variant_id, ln.location_id, ln.quantity) for ln in order.lines],
        )
        await mail.order_confirmed(conn, services, order, status, req.language)
        await audit_action(services, session, req.audit, order.customer_key)
    return earned


async def fail_pending(
    services: OrderServices, order_id: int, payment_status: str, reason: str, *, void: str | None = None
) -> bool:
    """Step 4, failure (and the expiry command's recovery): FAILED, stock, promotion uses and cart
    given back, in one unit of work. `void`: the reference of an authorization that may be held;
    its void call is recorded in that unit of work and made after the commit. False when the order
    was no longer PENDING (nothing changed, nothing voided)."""
    now = services.clock.now()
    async with unit_of_work(services) as session:
        row = (
            await session.execute(select(OrderRow).where(OrderRow.id == order_id).with_for_update())
        ).scalar_one_or_none()
        if row is None or row.status != r.PENDING:
            return False
        version = await carts.end_checkout(await session.connection(), row.cart_id, ordered=False, now=now)
        lines = (await r.lines_of(session, [order_id]))[order_id]
        why = stock.Movement(reason, str(order_id), None)
        for line in sorted(lines, key=lambda ln: (ln.location_id, ln.variant_id)):
            await stock.release(session, line.location_id, line.variant_id, line.quantity, why)
        await usage.release(
            session, row.promotion_ids or [], customer_key=row.customer_key, order_ref=r.order_number(order_id)
        )
        await points.give_back(session, row, now, "payment not completed")
        row.status = r.FAILED
        row.payment_status = payment_status
        row.updated_at = now
        if version is not None:
            row.cart_version = version  # a retry of this key on the cart as it is now gets the same answer
        call = await _void_due(session, order_id, void, now)
    await _make(services, call)
    return True


async def _void_due(session: AsyncSession, order_id: int, reference: str | None, now: datetime) -> int | None:
    """Record a void of `reference` in the caller's unit of work (none without a reference)."""
    if reference is None:
        return None
    return await calls.record(
        session, order_id=order_id, action=CallAction.VOID, reference=reference, amount=None, now=now
    )


async def _make(services: OrderServices, call: int | None) -> None:
    """After the commit: one attempt, as long as an authorization may take; a refused call stays due.
    A compensation must not mask the failure it follows: an error here (the database) is logged,
    and the call, recorded, is left to `payments retry` (claimed: once its lease has run out)."""
    if call is None:
        return
    try:
        await calls.make(services.engine, services.payments, services.clock, call, timeout=services.payment_timeout)
    except Exception as error:
        logger.warning("void call %s left to payments retry: %s", call, type(error).__name__)


# ---------------------------------------------------------------- replays


async def _settled(services: OrderServices, order_id: int) -> r.Order:
    """The order once it is no longer PENDING (a concurrent attempt is authorizing it)."""
    deadline = asyncio.get_running_loop().time() + services.replay_wait
    while True:
        found = (await r.orders_by_ids(services.engine, [order_id], visible_only=False)).get(order_id)
        if found is None:
            raise errors.OrderNotFound("No such order.")
        if found.status != r.PENDING:
            return found
        if asyncio.get_running_loop().time() >= deadline:
            raise errors.CheckoutInProgress("This checkout is still waiting for the payment: retry shortly.")
        await asyncio.sleep(0.02)


async def _replay(services: OrderServices, order_id: int, cart: carts.Cart) -> r.Order:
    """The order an earlier attempt with this key made, if it was for this very cart."""
    order = await _settled(services, order_id)
    reused = errors.IdempotencyKeyReused(
        "This idempotency key was used for another cart or an earlier version of it: use a new key.",
        ["input", "idempotencyKey"],
    )
    if order.cart_id != cart.id:
        raise reused
    if order.status == r.FAILED:
        current = await carts.get_cart(services.engine, cart.id, now=services.clock.now(), rules=services.cart_rules)
        if current is None or current.status != ACTIVE or current.version != order.cart_version:
            raise reused
        if order.payment_status == r.DECLINED:
            raise PaymentDeclined("The payment was declined; nothing was charged. Use a new key to try again.")
        raise PaymentTimeout("The payment did not go through; nothing was charged. Use a new key to try again.")
    return order


async def _existing(services: OrderServices, owner: str, key: str) -> int | None:
    """A read on a plain connection (never the writer's: on SQLite that would take the write lock)."""
    return await _by_key(services.engine, owner, key)


# ---------------------------------------------------------------- a guest cart of a signed-in customer


async def _attach(services: OrderServices, cart: carts.Cart, customer_key: int, now: datetime) -> None:
    """A signed-in customer checking out a guest cart: it becomes theirs first, as `cartAttachToCustomer`
    does, so the order is keyed to them and sealed under their subject (in their export, its address
    gone with their erasure). Its discount codes come along unchecked: the pricing that follows
    refuses one that does not apply to them (REFUSED_CODES), never drops it. Raises `CartMerged`
    when it joined a cart they already had: that one, with other lines, is not ordered unseen."""

    async def keep_every_code(codes: Sequence[str]) -> list[str | None]:
        return [None] * len(codes)

    try:
        attached, _changed = await carts.attach_to_customer(
            services.engine, cart.id, customer_key, now=now, rules=services.cart_rules, check_codes=keep_every_code
        )
    except CartNotFound:
        return  # closed or expired meanwhile: the next read says which
    if attached.id != cart.id:
        raise errors.CartMerged(attached.id)


# ---------------------------------------------------------------- the whole


async def checkout(
    services: OrderServices, req: CheckoutRequest, *, authorize: Callable[[carts.Cart], Awaitable[None]]
) -> r.Order:
    """Place an order from a cart (see the module's docstring). `authorize` raises when the caller
    may not use the cart. Raises `DomainError`s the client can act on; nothing is kept then."""
    location_id, location_code, address = await _fulfillment(services, req)
    for _attempt in range(3):
        now = services.clock.now()
        read = await _read(services, req, address, now)
        cart = read.cart
        await authorize(cart)
        if cart.id != req.cart_id and cart.status == ACTIVE:  # the cart named joined this one: not seen
            raise errors.CartMerged(cart.id)
        if req.customer_key is not None and cart.customer_key is None and cart.status == ACTIVE:
            await _attach(services, cart, req.customer_key, now)
            continue  # read it again: now the customer's
        if read.existing is not None:
            return await _replay(services, read.existing, cart)
        if cart.status != ACTIVE:
            raise errors.CartNotReady(
                "This cart is closed: an order was placed from it.", errors.OrderErrorCode.CART_CLOSED
            )
        plan = await _plan(services, req, read, (location_id, location_code), address, now)
        try:
            order = await _reserve(services, plan, req, now)
        except _Replay as replay:
            return await _replay(services, replay.order_id, cart)
        except _KeyTaken:  # this owner used the key before (a declined payment, or another cart)
            existing = await _existing(services, carts.cart_owner(cart), req.idempotency_key)
            if existing is None:
                raise _CartMoved() from None  # cannot be: the key's order is never deleted
            return await _replay(services, existing, cart)
        except _CartMoved:
            continue
        break
    else:
        raise errors.CartNotReady(
            "The cart keeps changing: reload it and try again.", errors.OrderErrorCode.CART_VERSION_CONFLICT
        )
    order_id = order.id
    try:
        payment_status, reference = await _authorize(services, order, req)
    except PaymentError as failure:
        await fail_pending(
            services,
            order_id,
            r.DECLINED if isinstance(failure, PaymentDeclined) else r.VOIDED,
            "order.payment_failed",
            void=_held(failure, order),
        )
        raise
    earned = await _confirm(services, order, payment_status, reference, req)
    if isinstance(earned, _Released):
        await _make(services, earned.call)
        raise PaymentTimeout("The checkout took too long and was released; nothing was charged.")
    return replace(
        order,
        status=_placed_status(order.fulfillment_method),
        payment_status=payment_status,
        payment_reference=reference,
        loyalty_points_earned=earned,
    )


def _held(failure: PaymentError, order: r.Order) -> str | None:
    """The reference to void after a failed payment: none after a decline (nothing is held); the
    provider's after a failed capture at the till; after a timeout the order number, the only
    reference there is when the answer was lost (the provider keyed the authorization by it)."""
    if isinstance(failure, _NotCaptured):
        return failure.reference
    if isinstance(failure, PaymentTimeout):
        return order.number
    return None
