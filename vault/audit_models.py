"""The audit log's table: append-only, one row per access, each row chained to the one before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["AuditRecord"]


class AuditRecord(Base):
    """Who (actor, role) did what (operation, fields) to whose data (`customer_key`: a key, never PII), when.

    `seq` is the primary key, so two writers that read the same head cannot both append:
    the database refuses the second, which retries on the new head.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    channel: Mapped[str] = mapped_column(String(32), nullable=False)
    operation: Mapped[str] = mapped_column(String(200), nullable=False)
    fields: Mapped[str] = mapped_column(Text, nullable=False)
    # Whose data: a customer's key, never PII. The column follows the convention for personal
    # references (`customer_key`); the attribute keeps the audit vocabulary.
    subject: Mapped[str] = mapped_column("customer_key", String(64), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(8), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(32), nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
