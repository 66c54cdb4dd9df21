"""Compiled queries answer exactly as graphql-core does, errors included, with the same SQL.

Each document of the corpus is sent through the GraphQL API twice: to the default app
(compiled queries on) and to an app over the same database with `compiled_queries=False`.
The two bodies (data, errors with their paths and locations, status) must be identical. A spy
on the compiler records whether it answered or handed the operation back to graphql-core, so
the tests also prove which path ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from core.ids import to_global_id
from gateway.app import create_app
from gateway.runtime import Runtime, build_runtime
from tests.catalog.test_storefront import STOREFRONT
from tests.conftest import GraphQLClient, StatementCounter

BENCH_QUERY = """query Storefront($first: Int!) {
  products(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id slug name category { slug name }
      variants { id sku name price { amount currency } quantityAvailable } } }
  }
}"""

PRODUCT_FIELDS = """
fragment ProductCard on Product { id ...Names category { ...Names } variants { ...VariantCard } }
fragment Names on Node { id ... on Product { name slug } ... on Category { name slug } }
fragment VariantCard on ProductVariant { sku price { ...Price } stock { available location { code kind } } }
fragment Price on Money { amount currency }
"""

# (document, variables, answered by the compiled path)
CORPUS: list[tuple[str, dict[str, Any] | None, bool]] = [
    (STOREFRONT, {"first": 7}, True),
    (STOREFRONT, {"first": 3, "after": to_global_id("ProductCursor", 10)}, True),
    (BENCH_QUERY, {"first": 24}, True),
    (
        "{ __typename channels { __typename code kind currency } locations { code kind city clickAndCollect } }",
        None,
        True,
    ),
    ("{ stores: locations(kind: STORE) { code name } warehouses: locations(kind: WAREHOUSE) { code } }", None, True),
    ("query($k: LocationKind) { locations(kind: $k) { code } }", {"k": "STORE"}, True),
    ("query Q { products(first: 4) { edges { node { ...ProductCard } } } }" + PRODUCT_FIELDS, None, True),
    ("{ products(first: 2) { edges { node { id } } edges { node { name id } cursor } } }", None, True),
    ("{ a: products(first: 2) { totalCount } b: products(first: 3) { edges { cursor } } }", None, True),
    (
        '{ products(first: 50, filter: {categorySlug: "kitchen"}) { totalCount edges { node { category { slug } } } } }',
        None,
        True,
    ),
    (
        "query($f: ProductFilter, $s: String) { products(first: 50, filter: $f, search: $s) { totalCount edges { node { name } } } }",
        {"f": {"categorySlug": "toys"}, "s": "a"},
        True,
    ),
    ('{ product(slug: "product-3") { id name description variants { id sku name } } }', None, True),
    ('{ product(slug: "no-such-product") { id } }', None, True),
    ("query($id: ID) { product(id: $id) { slug } }", {"id": to_global_id("Product", 5)}, True),
    (
        "query($p: ID!, $v: ID!, $c: ID!, $l: ID!) { p: node(id: $p) { __typename id ... on Product { slug } }"
        " v: node(id: $v) { __typename ... on ProductVariant { sku quantityAvailable } }"
        " c: node(id: $c) { ... on Category { name } } l: node(id: $l) { id ... on Location { code } } }",
        {
            "p": to_global_id("Product", 3),
            "v": to_global_id("ProductVariant", 4),
            "c": to_global_id("Category", 2),
            "l": to_global_id("Location", 1),
        },
        True,
    ),
    ("query($id: ID!) { node(id: $id) { id } }", {"id": to_global_id("Product", 999999)}, True),
    ("query($id: ID!) { node(id: $id) { id ... on Channel { code } } }", {"id": to_global_id("Channel", 1)}, True),
    (
        "{ products(first: 2) { edges { node { id name @skip(if: true) slug @include(if: false) category @include(if: true) { slug } } } } }",
        None,
        True,
    ),
    (
        "query($loc: ID) { products(first: 3) { edges { node { variants { all: quantityAvailable"
        " here: quantityAvailable(locationId: $loc) } } } } }",
        {"loc": to_global_id("Location", 2)},
        True,
    ),
    # per-object resolvers under batch-resolved lists; one failing: its error's path is built from its info's
    (
        "{ products(first: 2) { edges { node { variants { sku compareAtPrice { amount }"
        " availableForSale selectedOptions { name value } } } } } }",
        None,
        True,
    ),
    ('{ products(first: 1) { edges { node { name availableForSale(locationId: "bad") } } } }', None, True),
    # @skip on a variable is left to graphql-core
    ("query($no: Boolean!) { products(first: 2) { edges { node { id name @skip(if: $no) } } } }", {"no": True}, False),
    # one field error: the compiled path locates it and propagates its null as graphql-core does
    ("{ products(first: -1) { totalCount } }", None, True),
    ("{ products(first: 1000) { totalCount } }", None, True),
    ('{ products(after: "not-a-cursor") { totalCount } }', None, True),
    ('{ product(slug: "product-1", id: "x") { id } }', None, True),
    ("{ product { id } }", None, True),
    ('{ node(id: "%%%") { id } }', None, True),
    ('{ ok: locations(kind: STORE) { code } bad: product(slug: "a", id: "b") { id } }', None, True),
    (
        '{ a: product(slug: "product-3") { name variants { sku quantityAvailable(locationId: "bad") } }'
        ' b: product(slug: "product-6") { name } }',
        None,
        True,
    ),
    (
        'query($v: ID!) { node(id: $v) { id ... on ProductVariant { sku quantityAvailable(locationId: "bad") } } }',
        {"v": to_global_id("ProductVariant", 5)},
        True,
    ),
    # several errors (their order is graphql-core's timing) and bad variables: graphql-core answers
    ('{ products(first: 2) { edges { node { variants { quantityAvailable(locationId: "bad") } } } } }', None, False),
    ("query($first: Int) { products(first: $first) { totalCount } }", {"first": "many"}, False),
    ("{ __schema { queryType { name } } }", None, False),
]


@pytest.fixture
async def interpreted_runtime(runtime: Runtime, clock) -> AsyncIterator[Runtime]:
    other = build_runtime(runtime.settings.replace(compiled_queries=False), clock)
    assert other.executor.compiler is None
    yield other
    await other.aclose()


@pytest.fixture
async def interpreted(interpreted_runtime: Runtime) -> AsyncIterator[GraphQLClient]:
    app = create_app(interpreted_runtime.settings, runtime=interpreted_runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield GraphQLClient(client)


async def test_compiled_and_graphql_core_answers_are_identical_for_the_whole_corpus(gql, interpreted, spy):
    for query, variables, compiled in CORPUS:
        spy.answered.clear()
        expected = await interpreted.post(query, variables)
        answer = await gql.post(query, variables)
        assert (answer.status_code, answer.json()) == (expected.status_code, expected.json()), query
        assert spy.answered in ([compiled], [] if not compiled else [True]), (query, spy.answered)


async def test_compiled_answers_keep_the_response_key_order_of_the_document(gql, interpreted, spy):
    query = (
        "{ products(first: 2) { edges { node { name id ...F slug } } } } fragment F on Product { slug description id }"
    )
    expected = (await interpreted.execute(query))["data"]
    answer = (await gql.execute(query))["data"]
    assert list(answer["products"]["edges"][0]["node"]) == list(expected["products"]["edges"][0]["node"])
    assert list(answer["products"]["edges"][0]["node"]) == ["name", "id", "slug", "description"]
    assert spy.answered == [True]


async def test_compiled_storefront_costs_the_same_statements_as_graphql_core_whatever_the_page_size(
    gql, interpreted, interpreted_runtime, count_statements, spy
):
    await gql.data("{ channels { code } }")  # warm both channel directories
    await interpreted.data("{ channels { code } }")
    query = """query($first: Int) { products(first: $first) { edges { node { name category { name }
        variants { sku price { amount } quantityAvailable stock { available location { code } } } } } } }"""
    counts = {}
    for name, client, counter in (
        ("compiled", gql, count_statements),
        ("graphql-core", interpreted, StatementCounter(interpreted_runtime.services.engine)),
    ):
        for first in (5, 60):
            with counter:
                data = await client.data(query, {"first": first})
            assert len(data["products"]["edges"]) == first
            counts[(name, first)] = counter.count
            counter.count = 0
    # page, categories, variants, prices, stock, locations: one statement each, at any page size
    assert set(counts.values()) == {6}, counts
    assert spy.answered == [True, True, True]


async def test_a_cached_plan_serves_later_requests_with_other_variables(gql, interpreted, spy):
    for first in (1, 4, 2):
        expected = await interpreted.execute(BENCH_QUERY, {"first": first})
        assert await gql.execute(BENCH_QUERY, {"first": first}) == expected
    assert spy.answered == [True, True, True]


async def test_one_failing_field_is_answered_without_running_the_query_twice(gql, interpreted, spy, count_statements):
    query = (
        '{ a: product(slug: "product-3") { name variants { sku quantityAvailable(locationId: "bad") } }'
        ' b: product(slug: "product-6") { name } }'
    )
    await gql.data("{ channels { code } }")  # warm the channel directory
    spy.answered.clear()
    with count_statements as counter:
        body = await gql.execute(query)
    assert body == await interpreted.execute(query)
    assert body["data"] == {"a": None, "b": {"name": body["data"]["b"]["name"]}}  # Int! -> [ProductVariant!]! -> a
    [error] = body["errors"]
    assert error["path"] == ["a", "variants", 0, "quantityAvailable"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert spy.answered == [True]
    # two slugs, the variants, their stock: each once (a re-run would read the slugs again)
    assert counter.count == 4


async def test_failing_fields_under_different_nullable_fields_are_answered_without_running_the_query_twice(
    gql, interpreted, spy, count_statements
):
    """graphql-core reports each of them whatever the timing (only their order is timing): so does the compiled path."""
    bad = '{ name variants { sku quantityAvailable(locationId: "bad") } }'
    query = f'{{ a: product(slug: "product-3") {bad} b: product(slug: "product-3") {bad} c: channels {{ code }} }}'
    await gql.data("{ channels { code } }")  # warm the channel directory
    spy.answered.clear()
    with count_statements as counter:
        body = await gql.execute(query)
    expected = await interpreted.execute(query)
    assert body["data"] == expected["data"] and body["data"]["a"] is None and body["data"]["b"] is None
    assert body["data"]["c"]  # the field that did not fail is answered
    assert sorted(body["errors"], key=str) == sorted(expected["errors"], key=str)
    assert [e["path"][0] for e in body["errors"]] == ["a", "b"]  # in the order they were met
    assert spy.answered == [True]
    assert counter.count == 5  # each slug, the variants, their stock, the channels: once (a re-run doubles it)


async def test_two_failing_fields_under_one_nullable_field_are_left_to_graphql_core(gql, interpreted, spy):
    """Which of the two graphql-core reports is the first to fail: the compiled path does not guess."""
    query = '{ a: product(slug: "product-3") { variants { x: quantityAvailable(locationId: "bad") y: quantityAvailable(locationId: "worse") } } }'
    spy.answered.clear()
    body = await gql.execute(query)
    assert body["data"] == {"a": None} and len(body["errors"]) == 1
    assert body == await interpreted.execute(query)
    assert spy.answered == [False]


async def test_one_error_that_nulls_the_whole_data_is_answered_as_graphql_core_answers_it(gql, interpreted, spy):
    """A refused non-null root field alone: `data` is null, its one error located on the field."""
    query = "{ retentionRules { category } }"
    spy.answered.clear()
    body = await gql.execute(query)
    assert body == await interpreted.execute(query)
    assert body["data"] is None and [error["path"] for error in body["errors"]] == [["retentionRules"]]
    assert spy.answered == [True]


async def test_an_error_that_nulls_the_whole_data_beside_another_is_left_to_graphql_core(gql, interpreted, spy):
    """A refused non-null root field nulls `data`; graphql-core may stop before the other field fails."""
    customer = to_global_id("Customer", "1001")
    query = f'{{ a: customer(id: "{customer}") {{ email }} retentionRules {{ category }} }}'
    spy.answered.clear()
    body = await gql.execute(query)
    assert body == await interpreted.execute(query)
    assert body["data"] is None
    assert spy.answered == [False]


async def test_objects_read_off_their_attributes_are_filled_in_where_they_are_found(gql, interpreted, runtime, spy):
    """A price, a category's names and pageInfo need no level of their own; a product (batched fields) does."""
    from graphql import parse

    from schema.compiled.plan import Planner
    from schema.compiled.run import _specialize

    document = parse(BENCH_QUERY)
    plan = Planner(runtime.executor.graphql_schema).plan_operation(document, document.definitions[0])  # type: ignore[arg-type]
    _specialize(plan.root)
    connection = plan.root.fields[0].completion
    assert connection is not None and connection.plan is not None and connection.plan.rest  # edges
    page_info, edges = (f.completion for f in connection.plan.fields)
    assert page_info is not None and page_info.plan is not None and page_info.plan.rest == []
    assert edges is not None and edges.item is not None and edges.item.plan is not None
    product = edges.item.plan.fields[1].completion  # node
    assert product is not None and product.plan is not None and product.plan.rest
    fields = {f.key: f.completion for f in product.plan.fields}
    category = fields["category"]
    assert category is not None and category.plan is not None and category.plan.rest == []

    query = "{ products(first: 3) { pageInfo { __typename hasNextPage } edges { node { category { __typename slug id } variants { price { currency amount __typename } } } } } }"
    assert await gql.execute(query) == await interpreted.execute(query)
    assert spy.answered == [True]


async def test_requests_with_the_same_scalar_variables_share_one_coercion_and_others_get_their_own(
    gql, interpreted, runtime, spy
):
    for first in (2, 5, 2):
        assert await gql.execute(BENCH_QUERY, {"first": first}) == await interpreted.execute(
            BENCH_QUERY, {"first": first}
        )
    compiler = runtime.executor.compiler
    plan = compiler.plan_for(runtime.executor.prepare(BENCH_QUERY, None))
    assert set(plan.variables) == {((int, 2),), ((int, 5),)}
    # `true == 1` in Python: a Boolean sent for the Int must still be refused, not served as first: 1
    await gql.data(BENCH_QUERY, {"first": 1})
    refused = await gql.execute(BENCH_QUERY, {"first": True})
    assert refused == await interpreted.execute(BENCH_QUERY, {"first": True})
    assert "errors" in refused and refused.get("data") is None
    assert [len((await gql.data(BENCH_QUERY, {"first": n}))["products"]["edges"]) for n in (5, 2)] == [5, 2]

    by_filter = "query($f: ProductFilter) { products(first: 50, filter: $f) { edges { node { category { slug } } } } }"
    for slug in ("kitchen", "toys"):
        data = await gql.data(by_filter, {"f": {"categorySlug": slug}})
        assert {e["node"]["category"]["slug"] for e in data["products"]["edges"]} == {slug}
    assert compiler.plan_for(runtime.executor.prepare(by_filter, None)).variables == {}  # an input object: not kept
    assert spy.answered == [True] * 4 + [False] + [True] * 4  # the refused one: graphql-core reports it


async def test_kept_coercions_hold_only_the_operation_s_own_short_variables(gql, runtime):
    """A client cannot grow what is kept: made-up variables are not part of the key, long strings are not kept."""
    from schema.compiled import MAX_KEPT_CHARS, _scalar_key

    junk = {f"j{n}": "x" * 10_000 for n in range(20)}
    assert len((await gql.data(BENCH_QUERY, {"first": 3, **junk}))["products"]["edges"]) == 3
    plan = runtime.executor.compiler.plan_for(runtime.executor.prepare(BENCH_QUERY, None))
    assert set(plan.variables) == {((int, 3),)}  # the junk is ignored, as graphql-core ignores it

    search = "query($s: String) { products(first: 2, search: $s) { edges { node { name } } } }"
    await gql.post(search, {"s": "k" * (MAX_KEPT_CHARS + 1)})  # refused as too long, and not kept either
    await gql.data(search, {"s": "kettle"})
    searched = runtime.executor.compiler.plan_for(runtime.executor.prepare(search, None))
    assert set(searched.variables) == {((str, "kettle"),)}

    assert _scalar_key(("x",), {"x": 0.0}) is None  # -0.0 == 0.0: floats are never kept
    assert _scalar_key(("x",), {}) != _scalar_key(("x",), {"x": None})  # absent is not null


async def test_levels_of_read_and_batch_resolved_fields_are_built_in_one_pass(gql, interpreted, runtime, spy):
    """Below its root field the storefront query is read off objects or batch-resolved: those levels
    are resolved first and their results built in one pass (schema/compiled/onepass.py). A field
    resolved object by object (totalCount) leaves its own level to the runner, not those below it."""
    counted = BENCH_QUERY.replace("pageInfo {", "totalCount pageInfo {")
    for query in (BENCH_QUERY, counted):
        assert await gql.execute(query, {"first": 5}) == await interpreted.execute(query, {"first": 5})
    assert spy.answered == [True, True]
    for query, connection_in_one_pass in ((BENCH_QUERY, True), (counted, False)):
        plan = runtime.executor.compiler.plan_for(runtime.executor.prepare(query, None))
        connection = plan.root.fields[0].completion.plan
        edges = next(f for f in connection.fields if f.key == "edges").completion
        assert (connection.fill is not None) is connection_in_one_pass
        assert edges.item.plan.fill is not None  # the edges, their products and variants: one pass


async def test_two_root_fields_share_one_statement_per_loader_and_level(
    gql, interpreted, interpreted_runtime, count_statements, spy
):
    """Two product lists in one query: each level holds a plan of each, and their batch resolvers
    run side by side, so one loader's keys from both share one statement (a level of one plan
    awaits them in turn instead). graphql-core batches per loop turn, and the two lists' levels
    drift apart: it sends more."""
    await gql.data("{ channels { code } }")
    await interpreted.data("{ channels { code } }")
    spy.answered.clear()
    page = "edges { node { name category { name } variants { sku price { amount } quantityAvailable } } }"
    query = f'{{ a: products(first: 3) {{ {page} }} b: products(first: 4, search: "a") {{ {page} }} }}'
    counts = {}
    for name, client, counter in (
        ("compiled", gql, count_statements),
        ("graphql-core", interpreted, StatementCounter(interpreted_runtime.services.engine)),
    ):
        with counter:
            answers = await client.execute(query)
        counts[name] = counter.count
        counter.count = 0
        assert "errors" not in answers
    assert await gql.execute(query) == await interpreted.execute(query)
    assert counts["compiled"] == 6, counts  # two pages, then categories, variants, prices, stock
    assert counts["graphql-core"] >= counts["compiled"], counts
    assert spy.answered == [True, True]
