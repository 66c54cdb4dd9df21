"""Global IDs at the API edge and unguessable capability tokens."""

from __future__ import annotations

import base64
import binascii
import secrets

__all__ = ["InvalidGlobalId", "from_global_id", "int_key", "new_token", "to_global_id"]

MAX_INT_KEY = 2**31 - 1  # integer primary keys are 32-bit on PostgreSQL


class InvalidGlobalId(ValueError):
    code = "INVALID_ID"


def to_global_id(type_name: str, key: object) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


def from_global_id(global_id: str, expected_type: str | None = None) -> tuple[str, str]:
    """Decode `Type:key`; anything undecodable, or of another type than expected, is refused."""
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidGlobalId(f"not a valid ID: {global_id[:64]!r}") from exc
    type_name, sep, key = raw.partition(":")
    if not sep or not type_name or not key:
        raise InvalidGlobalId(f"not a valid ID: {global_id[:64]!r}")
    if expected_type is not None and type_name != expected_type:
        raise InvalidGlobalId(f"expected a {expected_type} ID")
    return type_name, key


def int_key(key: str) -> int | None:
    """The integer primary key a global ID carries, or None: ASCII digits within the column's range.

    (`str.isdigit` alone admits "²" and 40-digit numbers: one crashes `int`, the other PostgreSQL.)
    """
    if not (key.isascii() and key.isdigit()) or len(key) > 10:
        return None
    value = int(key)
    return value if 0 < value <= MAX_INT_KEY else None


def new_token(nbytes: int = 16) -> str:
    """128 random bits by default: enough for anything a guest holds as a capability."""
    return secrets.token_urlsafe(nbytes)
