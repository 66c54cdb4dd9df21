"""The price book: one price per variant and currency, shared by every channel of that currency."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Price(Base):
    __tablename__ = "prices"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        CheckConstraint("compare_at_amount IS NULL OR compare_at_amount > amount", name="compare_at_above_amount"),
    )

    variant_id: Mapped[int] = mapped_column(ForeignKey("product_variants.id", ondelete="CASCADE"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # The regular price while `amount` is a sale price (shown struck through); NULL: not on sale.
    compare_at_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
