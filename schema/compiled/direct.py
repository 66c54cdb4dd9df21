"""Calling a strawberry resolver without strawberry's per-call wrapper, for fields that need none.

Strawberry's `GraphQLField.resolve` for a field with a resolver is a closure (`_resolver`, or
`_async_resolver` for an async one) that, on every call, builds the `Info`, runs the field
extensions' chain (a `reduce` of partials, even when there are none), converts every argument
through `convert_arguments` (the GraphQL name worked out anew each time, every type unwrapped),
and for an async field wraps the result in one more coroutine. For a field with no extension,
no exception handler and a plain resolver, all that reduces to: the same `Info`, the arguments
whose type is a leaf as graphql-core coerced them, the others through strawberry's own
`convert_argument`, and the resolver function called as strawberry calls it. `direct_call`
works that out once per field, from the closure's own values (so the `Info` class, the scalar
registry and the config are exactly the ones strawberry would use); anything else gets None and
keeps going through `resolve`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLField, GraphQLResolveInfo
from strawberry.relay.types import GlobalID
from strawberry.schema import schema_converter
from strawberry.types.arguments import _is_leaf_type, convert_argument
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

__all__ = ["DirectCall", "direct_call", "wrapper_codes"]


def wrapper_codes() -> tuple[Any, ...]:
    """The code objects of strawberry's `_resolver` and `_async_resolver` closures (none: unknown version)."""
    names = ("_resolver", "_async_resolver")
    consts = schema_converter.GraphQLCoreConverter.from_resolver.__code__.co_consts
    found = tuple(c for c in consts if getattr(c, "co_name", None) in names)
    return found if len(found) == len(names) else ()


_WRAPPER_CODES = wrapper_codes()
# What the wrapper closes over in the strawberry CI runs: anything more (or less) is a wrapper
# this module has not read, so its fields keep going through it.
_WRAPPER_CELLS = (
    "_call_with_exception_handling",
    "_get_result_with_extensions",
    "_strawberry_info_from_graphql",
    "field_exception_handlers",
)


class DirectCall:
    """One field's resolver, called as strawberry's wrapper would call it, minus the wrapper."""

    __slots__ = ("_arguments", "_config", "_info_of", "_info_parameter", "_registry", "_resolver", "_self_parameter")

    def __init__(self, field: StrawberryField, info_of: Callable[[GraphQLResolveInfo], Any], converter: Any) -> None:
        resolver = field.base_resolver
        assert resolver is not None
        self._info_of = info_of
        self._resolver: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
        self._config = converter.config
        self._registry = converter.scalar_registry
        self._self_parameter = resolver.self_parameter is not None
        info_parameter = resolver.info_parameter
        self._info_parameter = info_parameter.name if info_parameter is not None else None
        # (GraphQL name, Python name, the type to convert through, or None when the value is used as is)
        self._arguments = [
            (
                self._config.name_converter.from_argument(argument),
                argument.python_name,
                None if _as_is(argument.type, self._registry) else argument.type,
            )
            for argument in field.arguments
        ]

    def __call__(self, source: Any, raw_info: GraphQLResolveInfo, raw_arguments: dict[str, Any]) -> Any:
        info = self._info_of(raw_info)
        kwargs: dict[str, Any] = {}
        for name, python_name, type_ in self._arguments:
            if name in raw_arguments:
                value = raw_arguments[name]
                if type_ is not None:
                    value = convert_argument(value, type_, self._registry, self._config, info, path=(name,))
                kwargs[python_name] = value
        if self._info_parameter is not None:
            kwargs[self._info_parameter] = info
        if self._self_parameter:
            return self._resolver(source, **kwargs)
        return self._resolver(**kwargs)


def _as_is(type_: Any, registry: Any) -> bool:
    """True when strawberry's `convert_argument` returns every value of this type unchanged."""
    if isinstance(type_, StrawberryOptional):  # exactly Optional (StrawberryMaybe, a subclass, wraps values)
        if type(type_) is not StrawberryOptional:
            return False
        type_ = type_.of_type
    return type_ is not GlobalID and _is_leaf_type(type_, registry)


def direct_call(definition: GraphQLField, resolve: Any = None) -> DirectCall | None:
    """A `DirectCall` for this field (whose resolve is `resolve`, by default the definition's own)
    when strawberry's wrapper would add nothing but cost; else None."""
    resolve = definition.resolve if resolve is None else resolve
    code = getattr(resolve, "__code__", None)
    if code is None or code not in _WRAPPER_CODES:
        return None  # another strawberry, or a resolve that something of ours wraps (a guard, a span)
    if code.co_freevars != _WRAPPER_CELLS:
        return None
    cells = dict(zip(code.co_freevars, resolve.__closure__ or (), strict=True))
    if cells["field_exception_handlers"].cell_contents:
        return None  # an exception handler may turn the resolver's error into a value
    info_of = cells["_strawberry_info_from_graphql"].cell_contents
    info_cells = dict(zip(info_of.__code__.co_freevars, info_of.__closure__ or (), strict=True))
    field = info_cells.get("field")
    converter = info_cells.get("self")
    if field is None or converter is None:
        return None
    field, converter = field.cell_contents, converter.cell_contents
    if type(field) is not StrawberryField or field.extensions:
        return None  # a subclass may resolve otherwise; an extension (permissions, say) must run
    resolver = field.base_resolver
    if type(resolver) is not StrawberryResolver or not callable(resolver.wrapped_func):
        return None
    if resolver.parent_parameter or resolver.root_parameter:
        return None
    if not resolver.signature.parameters.keys() <= _own_parameters(field, resolver):
        return None  # a parameter strawberry fills in some way this does not
    return DirectCall(field, info_of, converter)


def _own_parameters(field: StrawberryField, resolver: StrawberryResolver) -> set[str]:
    names = {a.python_name for a in field.arguments}
    for special in (resolver.self_parameter, resolver.info_parameter):
        if special is not None:
            names.add(special.name)
    return names
