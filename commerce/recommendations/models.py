"""Co-purchase statistics: how many orders held both products. Built only from consenting customers'
orders (`python -m gateway recommendations rebuild`); no row names a person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["CopurchasePair", "CopurchaseRebuild"]


class CopurchasePair(Base):
    __tablename__ = "copurchase_pairs"

    product_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    other_product_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    orders: Mapped[int] = mapped_column(Integer)  # orders holding both


class CopurchaseRebuild(Base):
    """When the statistics were last rebuilt, and from how many consenting customers' orders."""

    __tablename__ = "copurchase_rebuilds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(UtcDateTime)
    customers: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    pairs: Mapped[int] = mapped_column(Integer)
