"""Write an event to the outbox in the caller's transaction: it commits (or not) with the change.

Events carry ids and amounts only, never personal data: a receiver that needs more asks the
API with its own token. Events of one aggregate must be emitted while that aggregate's row is
locked (or written) by the same transaction, so they commit in id order and the relay can keep
that order per aggregate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from commerce.events.models import OutboxEvent

__all__ = ["emit", "to_json_payload"]

# Built once, run with its values as parameters, on the unit of work's connection: a hot path (every
# order step and stock movement) pays neither the statement's construction nor the ORM's bulk-insert path.
_INSERT = insert(OutboxEvent)


def _encode(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # amounts stay exact: "12.30", never a float
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an event payload: use timezone-aware UTC")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date | UUID):
        return str(value)
    raise TypeError(f"an event payload holds ids, amounts and times, not {type(value).__name__}")


def to_json_payload(payload: Mapping[str, object]) -> dict[str, Any]:
    """The payload as plain JSON values (Decimal as a string, datetimes as ISO 8601 UTC)."""
    result: dict[str, Any] = json.loads(json.dumps(dict(payload), default=_encode))
    return result


async def emit(
    session: AsyncSession | AsyncConnection,
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    payload: Mapping[str, object],
    occurred_at: datetime | None = None,
) -> None:
    """Add an event to the outbox within `session`'s transaction (nothing is sent here)."""
    conn = await session.connection() if isinstance(session, AsyncSession) else session
    await conn.execute(
        _INSERT,
        {
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "event_type": event_type,
            "payload": to_json_payload(payload),
            "created_at": occurred_at or datetime.now(UTC),
        },
    )
