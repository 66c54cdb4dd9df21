"""Relay pagination helpers: `PageInfo`, opaque cursors, and the cap on `first`."""

from __future__ import annotations

import strawberry

from core.ids import InvalidGlobalId, from_global_id, int_key, to_global_id
from schema.errors import bad_input

__all__ = ["PageInfo", "check_first", "decode_cursor", "encode_cursor"]


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


def check_first(first: int | None, maximum: int) -> int:
    """`first` must be 0..maximum: a page larger than that is refused, not silently shortened."""
    if first is None:
        return min(20, maximum)
    if first < 0:
        raise bad_input("`first` cannot be negative.", ["first"])
    if first > maximum:
        raise bad_input(f"`first` can be at most {maximum}.", ["first"])
    return first


def encode_cursor(kind: str, key: int) -> str:
    return to_global_id(f"{kind}Cursor", key)


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        key = int_key(from_global_id(cursor, f"{kind}Cursor")[1])
    except InvalidGlobalId:
        key = None
    if key is None:
        raise bad_input("`after` is not a cursor from this list.", ["after"])
    return key
