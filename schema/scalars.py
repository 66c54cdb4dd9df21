"""The contract's scalars: Decimal as a string, DateTime as ISO 8601 UTC, JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry

__all__ = ["JSON", "scalar_map"]


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise ValueError('Decimal values are strings, e.g. "129.99"')
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError("Decimal must be finite")
    return parsed


def _serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).isoformat()


def _parse_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a UTC offset, e.g. 2026-11-23T10:00:00+00:00")
    return parsed.astimezone(UTC)


DecimalScalar = strawberry.scalar(
    name="Decimal", serialize=str, parse_value=_parse_decimal, description='Serialized as a string, e.g. "129.99"'
)
DateTimeScalar = strawberry.scalar(
    name="DateTime", serialize=_serialize_datetime, parse_value=_parse_datetime, description="ISO 8601, UTC"
)
JSON = NewType("JSON", object)
JSONScalar = strawberry.scalar(name="JSON", serialize=lambda v: v, parse_value=lambda v: v)

scalar_map: dict[object, Any] = {Decimal: DecimalScalar, datetime: DateTimeScalar, JSON: JSONScalar}
