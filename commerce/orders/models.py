"""Order tables: the order, its lines (a snapshot), and the returns taken against it.

No foreign keys to carts, variants or customers: an order is a record that outlives them
(accounting retention), so later catalog, price or cart changes never alter it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

MONEY = Numeric(12, 2)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # A retry with the same key by the same owner finds this order; no second one can exist.
        UniqueConstraint("owner_key", "idempotency_key", name="uq_orders_owner_idempotency"),
        CheckConstraint("total >= 0 AND subtotal >= 0 AND discount_total >= 0", name="amounts_not_negative"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= total", name="refund_within_total"),
        Index("ix_orders_customer_placed", "customer_key", "id"),
        Index("ix_orders_pickup_status", "pickup_location_id", "status"),
        Index("ix_orders_status_reserved_until", "status", "reserved_until"),
        Index("ix_orders_placed_at", "placed_at"),  # the sales report's range scan
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_key: Mapped[str] = mapped_column(String(64))  # "customer:<key>" or "cart:<cart id>": the key's scope
    idempotency_key: Mapped[str] = mapped_column(String(128))
    cart_id: Mapped[str] = mapped_column(String(43), index=True)
    cart_version: Mapped[int] = mapped_column(Integer)
    customer_key: Mapped[int | None] = mapped_column(Integer)  # None: a guest order
    subject_id: Mapped[str | None] = mapped_column(String(32))  # the vault subject its sealed data is under
    status: Mapped[str] = mapped_column(String(24))
    channel_code: Mapped[str] = mapped_column(String(32))
    fulfillment_method: Mapped[str] = mapped_column(String(24))
    pickup_location_id: Mapped[int | None] = mapped_column(Integer)  # collect and in-store orders
    reserved_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    shipping_address_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    invoice_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    discount_total: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    tax_total: Mapped[Decimal] = mapped_column(MONEY)
    items_count: Mapped[int] = mapped_column(Integer, default=0)  # units sold: what the sales report counts
    discount_codes: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")  # as the cart held them
    promotion_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # usages to release if it fails
    payment_method: Mapped[str] = mapped_column(String(32))
    payment_status: Mapped[str] = mapped_column(String(24))
    payment_reference: Mapped[str | None] = mapped_column(String(64))
    amount_refunded: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    # an exchange's sale: what the returned goods paid of it, and the order whose payment they were
    # bought with (a later return of this sale pays that share back there)
    exchange_credit: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    credit_order_id: Mapped[int | None] = mapped_column(Integer)
    loyalty_points_earned: Mapped[int] = mapped_column(Integer, default=0)
    loyalty_points_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    placed_by: Mapped[str | None] = mapped_column(String(100))  # an operator's id (till, call center)
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrderLineRow(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("quantity_returned >= 0 AND quantity_returned <= quantity", name="returned_within_quantity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(Integer)  # no FK: the snapshot outlives the catalog row
    location_id: Mapped[int] = mapped_column(Integer)  # where its stock is held
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    quantity_returned: Mapped[int] = mapped_column(Integer, default=0)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    subtotal: Mapped[Decimal] = mapped_column(MONEY)
    discount: Mapped[Decimal] = mapped_column(MONEY)  # this line's share of the order's discounts
    total: Mapped[Decimal] = mapped_column(MONEY)  # gross, after discounts
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    amount_refunded: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))


class OrderReturnRow(Base):
    """One return taken at a store: which lines, how many, the refund, who took it."""

    __tablename__ = "order_returns"
    __table_args__ = (
        # An exchange's retry with its key finds the return the key took; no second one can exist,
        # of this order or another (the key, "cart:key", is one exchange's: migration 0095).
        Index("uq_order_returns_exchange_key", "exchange_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(Integer)
    lines: Mapped[list[list[int]]] = mapped_column(JSON)  # [[order line id, quantity], ...]
    refund: Mapped[Decimal] = mapped_column(MONEY)
    actor: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    exchange_key: Mapped[str | None] = mapped_column(String(180))  # an exchange's "cart:key" (None: a return)
    exchange_status: Mapped[str | None] = mapped_column(String(16))  # TAKEN, then SOLD or REFUNDED (an exchange's)
