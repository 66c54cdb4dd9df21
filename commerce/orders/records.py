"""What an order is to the rest of the code: immutable records, read in batches, and its states."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from commerce.orders.models import OrderLineRow, OrderRow

__all__ = [
    "COLLECT",
    "FULFILLMENT_METHODS",
    "VISIBLE",
    "Order",
    "OrderLine",
    "line_of",
    "lines_of",
    "order_number",
    "orders_by_ids",
    "to_order",
]

# Order statuses. PENDING (payment being authorized) and FAILED (declined, timed out, abandoned)
# are internal: such orders are in no list and no API answer.
PENDING = "PENDING"
FAILED = "FAILED"
PLACED = "PLACED"
RESERVED = "RESERVED"
READY_FOR_PICKUP = "READY_FOR_PICKUP"
COMPLETED = "COMPLETED"
SHIPPED = "SHIPPED"
CANCELLED = "CANCELLED"
RETURNED = "RETURNED"
PARTIALLY_RETURNED = "PARTIALLY_RETURNED"
VISIBLE = (PLACED, RESERVED, READY_FOR_PICKUP, COMPLETED, SHIPPED, CANCELLED, RETURNED, PARTIALLY_RETURNED)

SHIP_TO_ADDRESS = "SHIP_TO_ADDRESS"
CLICK_AND_COLLECT = "CLICK_AND_COLLECT"
RESERVE_AND_COLLECT = "RESERVE_AND_COLLECT"
IN_STORE = "IN_STORE"
FULFILLMENT_METHODS = (SHIP_TO_ADDRESS, CLICK_AND_COLLECT, RESERVE_AND_COLLECT, IN_STORE)
COLLECT = (CLICK_AND_COLLECT, RESERVE_AND_COLLECT)

# Payment statuses (the API's PaymentStatus, plus PENDING while authorizing)
AUTHORIZED = "AUTHORIZED"
CAPTURED = "CAPTURED"
DUE_AT_PICKUP = "DUE_AT_PICKUP"
DECLINED = "DECLINED"
VOIDED = "VOIDED"
REFUNDED = "REFUNDED"
PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"

# An exchange's return: TAKEN with the exchange, then SOLD (the new sale placed, any excess of the
# credit refunded) or REFUNDED (the sale failed: the whole refund paid out). Checkout reserves an
# exchange's sale only while its return is TAKEN (`checkout._hold_exchange`).
EXCHANGE_TAKEN, EXCHANGE_SOLD, EXCHANGE_REFUNDED = "TAKEN", "SOLD", "REFUNDED"


def order_number(order_id: int) -> str:
    """The number printed on the receipt and told to the call center."""
    return f"OG-{order_id:07d}"


@dataclass(frozen=True, slots=True)
class OrderLine:
    id: int
    variant_id: int
    location_id: int
    sku: str
    name: str
    quantity: int
    quantity_returned: int
    unit_price: Decimal
    subtotal: Decimal
    discount: Decimal
    total: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    amount_refunded: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    id: int
    status: str
    channel_code: str
    customer_key: int | None
    subject_id: str | None
    cart_id: str
    cart_version: int
    fulfillment_method: str
    pickup_location_id: int | None
    reserved_until: datetime | None
    shipping_address_sealed: bytes | None
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal
    tax_total: Decimal
    discount_codes: tuple[str, ...]
    promotion_ids: tuple[int, ...]
    payment_method: str
    payment_status: str
    payment_reference: str | None
    amount_refunded: Decimal
    loyalty_points_earned: int
    loyalty_points_redeemed: int
    placed_by: str | None
    placed_at: datetime
    lines: tuple[OrderLine, ...]

    @property
    def number(self) -> str:
        return order_number(self.id)

    @property
    def visible(self) -> bool:
        return self.status in VISIBLE


_LINE_COLUMNS = (
    OrderLineRow.id,
    OrderLineRow.variant_id,
    OrderLineRow.location_id,
    OrderLineRow.sku,
    OrderLineRow.name,
    OrderLineRow.quantity,
    OrderLineRow.quantity_returned,
    OrderLineRow.unit_price,
    OrderLineRow.subtotal,
    OrderLineRow.discount,
    OrderLineRow.total,
    OrderLineRow.tax_rate,
    OrderLineRow.tax_amount,
    OrderLineRow.amount_refunded,
)


def _line(row: Any) -> OrderLine:
    return OrderLine(*row[1:])


async def lines_of(conn: AsyncConnection | AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    grouped: dict[int, list[OrderLine]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return grouped
    stmt = select(OrderLineRow.order_id, *_LINE_COLUMNS).where(OrderLineRow.order_id.in_(order_ids))
    for row in await conn.execute(stmt.order_by(OrderLineRow.id)):
        grouped[row[0]].append(_line(row))
    return grouped


def line_of(row: OrderLineRow) -> OrderLine:
    """The record of a line row just written (its id assigned by a flush)."""
    return OrderLine(
        row.id,
        row.variant_id,
        row.location_id,
        row.sku,
        row.name,
        row.quantity,
        row.quantity_returned,
        Decimal(row.unit_price),
        Decimal(row.subtotal),
        Decimal(row.discount),
        Decimal(row.total),
        Decimal(row.tax_rate),
        Decimal(row.tax_amount),
        Decimal(row.amount_refunded),
    )


def to_order(row: OrderRow, lines: Sequence[OrderLine]) -> Order:
    return Order(
        id=row.id,
        status=row.status,
        channel_code=row.channel_code,
        customer_key=row.customer_key,
        subject_id=row.subject_id,
        cart_id=row.cart_id,
        cart_version=row.cart_version,
        fulfillment_method=row.fulfillment_method,
        pickup_location_id=row.pickup_location_id,
        reserved_until=row.reserved_until,
        shipping_address_sealed=row.shipping_address_sealed,
        currency=row.currency,
        subtotal=Decimal(row.subtotal),
        discount_total=Decimal(row.discount_total),
        total=Decimal(row.total),
        tax_total=Decimal(row.tax_total),
        discount_codes=tuple(row.discount_codes or ()),
        promotion_ids=tuple(row.promotion_ids or ()),
        payment_method=row.payment_method,
        payment_status=row.payment_status,
        payment_reference=row.payment_reference,
        amount_refunded=Decimal(row.amount_refunded),
        loyalty_points_earned=row.loyalty_points_earned,
        loyalty_points_redeemed=row.loyalty_points_redeemed,
        placed_by=row.placed_by,
        placed_at=row.placed_at,
        lines=tuple(lines),
    )


async def orders_by_ids(engine: AsyncEngine, ids: Sequence[int], *, visible_only: bool = True) -> dict[int, Order]:
    """Orders with their lines: two queries for any number of orders."""
    if not ids:
        return {}
    async with AsyncSession(engine) as session:
        stmt = select(OrderRow).where(OrderRow.id.in_(ids))
        if visible_only:
            stmt = stmt.where(OrderRow.status.in_(VISIBLE))
        rows = list((await session.execute(stmt)).scalars())
        lines = await lines_of(session, [r.id for r in rows])
        return {r.id: to_order(r, lines[r.id]) for r in rows}
