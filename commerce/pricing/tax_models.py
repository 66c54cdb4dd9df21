"""VAT classes: a product names one (prices are gross, VAT included, as Polish B2C prices are)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

STANDARD = "standard"
# code, rate: seeded by the migration that creates the table
TAX_CLASSES = (
    ("standard", Decimal("0.23")),
    ("reduced", Decimal("0.08")),
    ("super_reduced", Decimal("0.05")),
    ("zero", Decimal("0.00")),
)


class TaxClass(Base):
    __tablename__ = "tax_classes"
    __table_args__ = (CheckConstraint("rate >= 0 AND rate < 1", name="rate_fraction"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    position: Mapped[int] = mapped_column(Integer, default=0)
