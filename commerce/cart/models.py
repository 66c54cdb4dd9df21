"""Cart tables. A customer's one active cart is enforced by a partial unique index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

ACTIVE = "active"
MERGED = "merged"  # a guest cart that joined a customer's cart at login: see merged_into
CHECKING_OUT = "checking_out"  # an order is being placed from it (payment pending): no changes meanwhile
ORDERED = "ordered"  # closed by the order placed from it; the customer's next cartCreate starts afresh
ABANDONED = "abandoned"  # its checkout failed after the customer had already started a new cart


class CartRow(Base):
    __tablename__ = "carts"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        # One active cart per customer, whatever the device or channel (guests: customer_key NULL).
        Index(
            "uq_carts_active_customer",
            "customer_key",
            unique=True,
            sqlite_where=text("status = 'active' AND customer_key IS NOT NULL"),
            postgresql_where=text("status = 'active' AND customer_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(43), primary_key=True)  # new_token(): 128 random bits
    customer_key: Mapped[int | None] = mapped_column(Integer)  # no FK: customers are another context
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    merged_into: Mapped[str | None] = mapped_column(String(43))
    version: Mapped[int] = mapped_column(Integer, default=1)
    discount_codes: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")  # upper-cased, in order
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CartLineRow(Base):
    __tablename__ = "cart_lines"
    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id", name="uq_cart_lines_cart_variant"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cart_id: Mapped[str] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("product_variants.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
