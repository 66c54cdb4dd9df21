"""The payment calls an order change made due, and what became of them (`calls.py`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["CallAction", "CallStatus", "PaymentCallRow"]


class CallAction(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class CallStatus(StrEnum):
    DUE = "due"
    DONE = "done"
    FAILED = "failed"  # MAX_ATTEMPTS refused: a person reconciles it with the provider


class PaymentCallRow(Base):
    __tablename__ = "payment_calls"
    __table_args__ = (Index("ix_payment_calls_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(128))  # the provider's payment id
    amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))  # capture and refund; none for a void
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.DUE)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(64))  # the error's type: never a message with data in it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
