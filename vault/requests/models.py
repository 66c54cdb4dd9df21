"""The data-subject requests table: one row per request, no personal data in the clear.

`steps_done` names the sources an erasure has finished, so `dsr run` resumes where an
interrupted run stopped; `retained` is what the erasure kept and why (JSON, no personal data).
The export document is never stored: it is generated when read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, Select, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime
from vault.models import SUBJECT_ID_LENGTH

EXPORT, ERASURE = "EXPORT", "ERASURE"
PENDING, IN_PROGRESS, COMPLETED, REJECTED = "PENDING", "IN_PROGRESS", "COMPLETED", "REJECTED"

__all__ = ["DataSubjectRequestRow"]


class DataSubjectRequestRow(Base):
    __tablename__ = "vault_subject_requests"
    __table_args__ = (Index("ix_vault_subject_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # EXPORT | ERASURE
    status: Mapped[str] = mapped_column(String(16))  # PENDING | IN_PROGRESS | COMPLETED | REJECTED
    customer_key: Mapped[int] = mapped_column(Integer, index=True)  # the account the DPO named
    subject_id: Mapped[str | None] = mapped_column(String(SUBJECT_ID_LENGTH), index=True)  # None: unknown person
    requested_by: Mapped[str] = mapped_column(String(100))  # the operator, never the person's data
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    steps_done: Mapped[list[str]] = mapped_column(JSON, default=list)
    retained: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


def erasures_running() -> Select[int]:
    """The accounts an erasure has begun on and not finished: erased from that moment, so that
    nothing new is recorded about the person while the sources erase them one by one."""
    row = DataSubjectRequestRow
    return select(row.customer_key).where(row.kind == ERASURE, row.status == IN_PROGRESS)
