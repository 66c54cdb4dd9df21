"""Resolvers called without strawberry's per-call wrapper get exactly what the wrapper would give them.

`schema/compiled/direct.py` replaces strawberry's `_resolver`/`_async_resolver` closure for
fields with no extension and no exception handler. Each resolver below records the arguments
it was called with; calling it through strawberry's own `resolve` and through `DirectCall` must
record the same values, of the same types (input objects, enums, IDs, lists, Maybe, defaults).
Fields that need the wrapper (an extension, a permission, an exception handler) get no
`DirectCall`.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
import strawberry
from graphql import GraphQLResolveInfo, get_argument_values, parse
from graphql.execution.values import get_variable_values
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.relay import GlobalID

from schema.compiled.direct import direct_call
from schema.compiled.plan import Planner
from tests.schema.test_compiled_queries import BENCH_QUERY

seen: list[dict[str, Any]] = []


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.input
class Filter:
    name: str | None = None
    colors: list[Color] | None = None


class Deny(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return str(next_(source, info, **kwargs)).upper()


@strawberry.type
class Query:
    @strawberry.field
    def plain(
        self,
        info: strawberry.Info,
        first: int = 20,
        filter: Filter | None = None,
        color: Color = Color.RED,
        ids: list[int] | None = None,
        node: GlobalID | None = None,
        token: strawberry.ID | None = None,
        name: strawberry.Maybe[str | None] = None,
    ) -> str:
        seen.append(
            {
                "self": self,
                "info": (type(info).__name__, info.field_name, info.context),
                "first": first,
                "filter": filter,
                "color": color,
                "ids": ids,
                "node": node,
                "token": token,
                "name": name,
            }
        )
        return "ok"

    @strawberry.field
    async def later(self, first: int = 1) -> int:
        return first

    @strawberry.field(permission_classes=[Deny])
    def guarded(self) -> str:
        return "secret"

    @strawberry.field(extensions=[Upper()])
    def shouted(self) -> str:
        return "quiet"

    @strawberry.field
    def attribute_like(self) -> str:
        return "no arguments, still a resolver"


SCHEMA = strawberry.Schema(query=Query)
GRAPHQL_SCHEMA = SCHEMA._schema
QUERY = GRAPHQL_SCHEMA.query_type
assert QUERY is not None

DOCUMENT = """query($f: Filter, $c: Color!, $ids: [Int!], $n: ID, $t: ID, $name: String) {
  plain(first: 3, filter: $f, color: $c, ids: $ids, node: $n, token: $t, name: $name)
}"""


def _info(field_name: str, context: Any) -> GraphQLResolveInfo:
    """What graphql-core would pass a root field (only the parts these resolvers read are real)."""
    parts: list[Any] = [field_name, [], QUERY.fields[field_name].type, QUERY, None, GRAPHQL_SCHEMA]
    parts += [{}, None, None, {}, context, lambda value: False, None, None]
    return GraphQLResolveInfo(*parts)


@pytest.mark.parametrize(
    "variables",
    [
        {"c": "BLUE"},
        {"c": "RED", "f": {"name": "kettle", "colors": ["BLUE", "RED"]}, "ids": [1, 2, 3]},
        {"c": "RED", "n": str(GlobalID("Product", "7")), "t": "abc", "name": None},
        {"c": "BLUE", "name": "set", "f": {}},
    ],
)
def test_a_direct_call_gives_the_resolver_what_strawberry_s_wrapper_gives_it(variables: dict[str, Any]):
    document = parse(DOCUMENT)
    operation = document.definitions[0]
    coerced = get_variable_values(GRAPHQL_SCHEMA, operation.variable_definitions, variables)  # type: ignore[attr-defined]
    assert not isinstance(coerced, list), coerced
    definition = QUERY.fields["plain"]
    node = operation.selection_set.selections[0]  # type: ignore[attr-defined]
    arguments = get_argument_values(definition, node, coerced)

    direct = direct_call(definition)
    assert direct is not None
    seen.clear()
    assert definition.resolve(None, _info("plain", "context"), **arguments) == "ok"
    assert direct(None, _info("plain", "context"), arguments) == "ok"
    through_strawberry, through_direct = seen
    assert through_direct == through_strawberry
    assert {k: type(v) for k, v in through_direct.items()} == {k: type(v) for k, v in through_strawberry.items()}


async def test_an_async_resolver_called_directly_returns_its_awaitable():
    definition = QUERY.fields["later"]
    direct = direct_call(definition)
    assert direct is not None
    assert await direct(None, _info("later", None), {"first": 5}) == 5


@pytest.mark.parametrize("field", ["guarded", "shouted"])
def test_a_field_with_a_permission_or_an_extension_keeps_strawberry_s_wrapper(field: str):
    assert direct_call(QUERY.fields[field]) is None


def test_a_wrapped_resolve_keeps_going_through_resolve():
    definition = QUERY.fields["attributeLike"]
    assert direct_call(definition) is not None
    inner = definition.resolve

    def guard(source: Any, info: Any, **kwargs: Any) -> Any:  # as schema/authorization.py wraps a field
        return inner(source, info, **kwargs)

    guard.__wrapped__ = inner  # type: ignore[attr-defined]
    definition.resolve = guard
    try:
        assert direct_call(definition) is None
    finally:
        definition.resolve = inner


async def test_the_storefront_s_root_field_is_called_directly_and_answers_through_the_api(gql, runtime):
    """The gateway's own schema: `products` (filter input, enum sort, variables) goes without the wrapper."""
    document = parse(BENCH_QUERY)
    plan = Planner(runtime.executor.graphql_schema).plan_operation(document, document.definitions[0])  # type: ignore[arg-type]
    (products,) = plan.root.fields
    assert products.direct is not None

    query = """query($f: ProductFilter, $k: ProductSortKeys!) {
      products(first: 2, filter: $f, sortKey: $k, reverse: true) { edges { node { name category { slug } } } }
    }"""
    data = await gql.data(query, {"f": {"categorySlug": "kitchen"}, "k": "TITLE"})
    edges = data["products"]["edges"]
    everything = await gql.data(
        '{ products(first: 100, filter: {categorySlug: "kitchen"}) { edges { node { name } } } }'
    )
    kitchen = sorted((edge["node"]["name"] for edge in everything["products"]["edges"]), reverse=True)
    assert [edge["node"]["name"] for edge in edges] == kitchen[:2]  # the filter, the enum and reverse all arrived
    assert {edge["node"]["category"]["slug"] for edge in edges} == {"kitchen"}
