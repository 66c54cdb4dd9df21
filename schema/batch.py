"""Batch resolvers: one call resolves a field for every object of a level.

A field's ordinary resolver answers for one object; under graphql-core each object calls it
and the loaders gather the keys. The compiled executor (schema/compiled) can do better for a
field registered here: it calls the batch resolver once with all the objects of the level,
which asks its loader once with every key. The field's own resolver is written as the batch
resolver applied to one object, so both executors share one implementation.

A batch resolver gets the objects, the request's Context and the field's arguments as
graphql-core coerced them (GraphQL names), and returns one value per object, in order; an
Exception in the list is that object's field error, as if its resolver had raised it. It must
not mutate the objects' list, and must leave the context variables as it found them: the
executor may await a level's batch resolvers one after another in the request's own context.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["BatchResolver", "batch_resolver", "batched", "one"]

BatchResolver = Callable[[Sequence[Any], Any, dict[str, Any]], Awaitable[list[Any]]]
F = TypeVar("F", bound=BatchResolver)

_REGISTRY: dict[tuple[str, str], BatchResolver] = {}


def batched(type_name: str, field_name: str) -> Callable[[F], F]:
    """Register `fn` as the batch resolver of the GraphQL field `type_name.field_name`."""

    def register(fn: F) -> F:
        _REGISTRY[(type_name, field_name)] = fn
        return fn

    return register


def batch_resolver(type_name: str, field_name: str) -> BatchResolver | None:
    return _REGISTRY.get((type_name, field_name))


def registered() -> list[tuple[str, str]]:
    """Every registered field (start-up checks they all exist in the schema)."""
    return list(_REGISTRY)


async def one(resolver: BatchResolver, source: Any, context: Any, args: dict[str, Any] | None = None) -> Any:
    """The field's value for one object: what the per-object resolver returns (or raises)."""
    [value] = await resolver([source], context, args or {})
    if isinstance(value, Exception):
        raise value
    return value
