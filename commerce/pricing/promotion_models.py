"""Promotions and discount codes, and the uses checkout records against their limits."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class PromotionRow(Base):
    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint("kind IN ('percentage', 'fixed_amount')", name="known_kind"),
        CheckConstraint("value >= 0", name="value_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)  # upper-cased; NULL: automatic
    description: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    min_subtotal: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # Scopes and channels as JSON lists: small, read whole with the promotion, never queried into.
    product_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    category_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    usage_limit: Mapped[int | None] = mapped_column(Integer)
    usage_limit_per_customer: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    # A personal offer: for these loyalty tiers, and/or for customers who bought from these categories
    # in [target_bought_from, target_bought_until) (purchase targeting needs PERSONALIZATION consent).
    target_tiers: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    target_category_ids: Mapped[list[int]] = mapped_column(JSON, default=list, server_default="[]")
    target_bought_from: Mapped[datetime | None] = mapped_column(UtcDateTime)
    target_bought_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PromotionUsage(Base):
    """One use of a promotion by an order (written by checkout; read here to enforce limits)."""

    __tablename__ = "promotion_usages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"), index=True)
    customer_key: Mapped[int | None] = mapped_column(Integer, index=True)  # no FK: customers live elsewhere
    order_ref: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PromotionUsageCounter(Base):
    """Uses of a promotion so far, in total (`scope` "*") and per customer (`scope` "c:<key>").

    Checkout claims a use with one conditional update (`used = used + 1 WHERE used < limit`), so
    two concurrent orders can never both take the last use: limits hold without counting at read time.
    """

    __tablename__ = "promotion_usage_counters"
    __table_args__ = (CheckConstraint("used >= 0", name="used_not_negative"),)

    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(24), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
