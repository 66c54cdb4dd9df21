"""The email outbox: messages waiting to be sent, written in the same unit of work as their cause.

No address and no plaintext content is stored: `customer_key` says whom to write to (the address
is decrypted from the vault only when sending) and the template's parameters are a vault
ciphertext bound to the customer, so an erasure (crypto-shredding) also voids pending mail.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

TABLE = "email_outbox"
PENDING, SENT, FAILED = "pending", "sent", "failed"


class EmailOutbox(Base):
    __tablename__ = TABLE
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="known_status"),
        Index("ix_email_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[int] = mapped_column(Integer, index=True)  # no FK: customers own their table
    subject_id: Mapped[str] = mapped_column(String(64))  # the vault subject the payload is sealed for
    template: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    payload_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)  # an error type, never content
