"""The audit log's tables: append-only, one row per access, each row chained to the one before; and
the signed cuts the retention job made at its start."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["AuditCut", "AuditRecord"]


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
    subject: Mapped[str] = mapped_column("customer_key", String(64), key="subject", nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(8), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(32), nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuditCut(Base):
    """Where the retention job cut the log: records up to `seq` were deleted, `hash` being the
    last one's, so the rest verifies from here instead of from the first record.

    `mac` signs (seq, hash, cut_at) under the audit key: whoever can write the database but lacks
    the key cannot forge a cut to drop records unnoticed. Append-only, like the log; the log's
    trigger lets a record be deleted only below a cut.
    """

    __tablename__ = "audit_log_cuts"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    cut_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    mac: Mapped[str] = mapped_column(String(64), nullable=False)
