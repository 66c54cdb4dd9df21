"""Start-up self-check: does this strawberry and graphql-core still fit what the compiled path assumes?

The compiled path builds `GraphQLResolveInfo` positionally, recognises strawberry's plain
attribute resolver by its code object and reads `Path`s built by hand. A release of either
library could change any of that without an error, so before the first request the gateway
checks each assumption on the real schema; if one fails it logs an error naming it and serves
every query with graphql-core instead (correct, only slower). Nothing is decided mid-request.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema, parse
from graphql.pyutils import Path

from schema.compiled import direct
from schema.compiled import plan as planning

__all__ = ["incompatibilities"]

logger = logging.getLogger("omnigate.graphql.compiled")


def incompatibilities(schema: GraphQLSchema) -> list[str]:
    """What does not hold on this schema with the installed libraries (empty: all is well)."""
    problems: list[str] = []
    if planning._BASIC_RESOLVER_CODE is None:
        problems.append("strawberry's attribute resolver (_get_basic_result) was not found")
    markers: list[Any] = [object() for _ in range(14)]
    try:
        info = GraphQLResolveInfo(*markers)
        expected = (
            "field_name",
            "field_nodes",
            "return_type",
            "parent_type",
            "path",
            "schema",
            "fragments",
            "root_value",
            "operation",
            "variable_values",
            "context",
            "is_awaitable",
            "abort_signal",
            "async_helpers",
        )
        for index, name in enumerate(expected):
            if getattr(info, name, None) is not markers[index]:
                problems.append(f"GraphQLResolveInfo field {index} is not {name}")
                break
    except TypeError as error:
        problems.append(f"GraphQLResolveInfo takes other arguments ({error})")
    path = Path(Path(None, "a", "Query"), 0, None)
    if path.as_list() != ["a", 0] or path.prev is None or path.prev.typename != "Query":
        problems.append("graphql-core's Path changed")
    elif tuple.__new__(Path, (None, "a", "Query")) != Path(None, "a", "Query"):  # how run.py builds them
        problems.append("graphql-core's Path is no longer a plain tuple")
    problems.extend(_attribute_fields_recognised(schema))
    return problems


def _attribute_fields_recognised(schema: GraphQLSchema) -> list[str]:
    """Some field of the schema must be read as a plain attribute, or the recognition broke."""
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for definition in type_.fields.values():
            if planning._attribute_name(definition, definition.resolve) is not None:
                return []
    return ["no field is recognised as a plain attribute: strawberry's default resolver changed"]


def plan_smoke_test(schema: GraphQLSchema) -> list[str]:
    """Plan a trivial query: the planner itself must work on this schema."""
    document = parse("{ __typename }")
    try:
        planning.Planner(schema).plan_operation(document, document.definitions[0])  # type: ignore[arg-type]
    except Exception as error:  # any failure means: do not compile
        return [f"planning failed ({type(error).__name__})"]
    return []


def check(schema: GraphQLSchema) -> bool:
    """True when the compiled path may run; logs an error naming each failed assumption otherwise."""
    problems: list[Any] = incompatibilities(schema) + plan_smoke_test(schema)
    for problem in problems:
        logger.error("compiled queries OFF, graphql-core answers every query: %s", problem)
    if not direct.wrapper_codes():  # correct either way: every resolver then goes through strawberry's wrapper
        logger.warning("strawberry's resolver wrapper not recognised: compiled queries call every resolver through it")
    return not problems
