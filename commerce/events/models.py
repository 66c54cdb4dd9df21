"""Outbox tables: the events themselves, and each webhook endpoint's delivery of each event.

An event is written in the same transaction as the change it reports (`outbox.emit`), so it
exists exactly when the change does. The relay (`commerce.events.relay`) later fans each event
out to one `outbox_deliveries` row per endpoint that wants it, and delivers those rows in
event-id order per (endpoint, aggregate). `outbox_endpoints` keeps each endpoint's fan-out
watermark, so every endpoint (and every relay replica) resumes where it stopped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["DEAD", "DELIVERED", "PENDING", "OutboxDelivery", "OutboxEndpoint", "OutboxEvent"]

# An autoincrementing 64-bit key on PostgreSQL; SQLite only autoincrements an INTEGER primary key.
EventId = BigInteger().with_variant(Integer(), "sqlite")

PENDING = "pending"  # waiting for its (next) attempt
DELIVERED = "delivered"  # the endpoint answered 2xx
DEAD = "dead"  # gave up after the endpoint's maximum attempts: the dead-letter state


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_aggregate", "aggregate_type", "aggregate_id", "id"),
        Index("ix_outbox_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)  # the order of events
    aggregate_type: Mapped[str] = mapped_column(String(40))  # e.g. "order", "stock_level"
    aggregate_id: Mapped[str] = mapped_column(String(80))
    event_type: Mapped[str] = mapped_column(String(64))  # e.g. "order.placed", "stock.moved"
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and amounts only: never personal data
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxEndpoint(Base):
    """An endpoint the relay has served: every event below `low_watermark` has been fanned out to it."""

    __tablename__ = "outbox_endpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    low_watermark: Mapped[int] = mapped_column(EventId, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxDelivery(Base):
    """One event on its way to one endpoint (named in the webhooks file)."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (
        # The head of each aggregate's queue per endpoint, and the due pending ones.
        Index("ix_outbox_deliveries_queue", "endpoint", "aggregate_type", "aggregate_id", "event_id"),
        Index("ix_outbox_deliveries_due", "endpoint", "status", "next_attempt_at"),
    )

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=False)  # no FK: events may be pruned
    aggregate_type: Mapped[str] = mapped_column(String(40))
    aggregate_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)  # also the lease: a claimed row is not due
    last_error: Mapped[str | None] = mapped_column(Text)  # status code or exception name: never a body
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
