"""The `Node` interface and `node(id)`: each type registers how to fetch itself by key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from core.ids import InvalidGlobalId, from_global_id, int_key
from schema.errors import bad_input

__all__ = ["Node", "decode_id", "register_node", "resolve_node"]

NodeFetcher = Callable[[Any, str], Awaitable[Any]]  # (info, key) -> a strawberry object or None
_fetchers: dict[str, NodeFetcher] = {}


@strawberry.interface
class Node:
    __slots__ = ()
    id: strawberry.ID


def register_node(type_name: str) -> Callable[[NodeFetcher], NodeFetcher]:
    """Declare how `node(id)` finds objects of `type_name`; the fetcher applies its own access rules."""

    def register(fetch: NodeFetcher) -> NodeFetcher:
        _fetchers[type_name] = fetch
        return fetch

    return register


def decode_id(global_id: str, expected_type: str, field: str = "id") -> str:
    """The plain key inside a global ID of the expected type, or a BAD_USER_INPUT error."""
    try:
        return from_global_id(global_id, expected_type)[1]
    except InvalidGlobalId as exc:
        raise bad_input(str(exc), [field]) from None


def decode_int_id(global_id: str, expected_type: str, field: str = "id") -> int:
    key = int_key(decode_id(global_id, expected_type, field))
    if key is None:
        raise bad_input(f"not a valid {expected_type} ID", [field])
    return key


async def resolve_node(info: Any, global_id: str) -> Any:
    try:
        type_name, key = from_global_id(global_id)
    except InvalidGlobalId as exc:
        raise bad_input(str(exc), ["id"]) from None
    fetch = _fetchers.get(type_name)
    return await fetch(info, key) if fetch is not None else None
