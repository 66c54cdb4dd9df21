"""Tracing: the spans of one request, their parentage, and that no literal or PII reaches them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from core.db import statement_engines
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import Runtime, build_runtime
from gateway.telemetry import build_tracer_provider, sanitize_document
from tests.conftest import GraphQLClient

SECRET = "secret@example.com"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


async def _traced_client(
    settings: Settings, clock: Any, exporter: InMemorySpanExporter
) -> AsyncIterator[tuple[Runtime, GraphQLClient]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = build_runtime(settings, clock, tracer_provider=provider)
    app = create_app(settings, runtime=runtime)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield runtime, GraphQLClient(http)
    finally:
        await runtime.aclose()
        provider.shutdown()


@pytest.fixture
async def traced_runtime(
    settings: Settings, clock: Any, exporter: InMemorySpanExporter
) -> AsyncIterator[tuple[Runtime, GraphQLClient]]:
    async for pair in _traced_client(settings, clock, exporter):
        yield pair


@pytest.fixture
def traced(traced_runtime: tuple[Runtime, GraphQLClient]) -> GraphQLClient:
    return traced_runtime[1]


@pytest.fixture
async def traced_resolvers(
    settings: Settings, clock: Any, exporter: InMemorySpanExporter
) -> AsyncIterator[GraphQLClient]:
    async for _, client in _traced_client(settings.replace(trace_resolvers=True), clock, exporter):
        yield client


def _spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def _one(spans: list[ReadableSpan], predicate: Any) -> ReadableSpan:
    found = [s for s in spans if predicate(s)]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _everything_recorded(spans: list[ReadableSpan]) -> str:
    """Every name, attribute, event and status text of every span, as one string to search."""
    parts: list[str] = []
    for span in spans:
        parts += [span.name, json.dumps(dict(span.attributes or {}), default=str), span.status.description or ""]
        for event in span.events:
            parts += [event.name, json.dumps(dict(event.attributes or {}), default=str)]
        parts.append(json.dumps(dict(span.resource.attributes), default=str))
    return "\n".join(parts)


STOREFRONT = """query Storefront($first: Int) { products(first: $first) { edges { node { slug name
    category { name } variants { sku price { amount } quantityAvailable } } } } }"""


async def test_a_storefront_query_has_a_server_span_an_operation_span_and_sql_spans_in_one_tree(traced, exporter):
    await traced.data(STOREFRONT, {"first": 5})
    spans = _spans(exporter)
    server = _one(spans, lambda s: s.kind is SpanKind.SERVER)
    operation = _one(spans, lambda s: s.name == "query")
    root_field = _one(spans, lambda s: s.name == "resolve Query.products")
    sql = [s for s in spans if s.kind is SpanKind.CLIENT]

    assert server.parent is None
    assert operation.parent.span_id == server.context.span_id
    assert root_field.parent.span_id == operation.context.span_id
    assert len({s.context.trace_id for s in spans}) == 1
    assert sql, "the SQL statements have spans"
    by_id = {s.context.span_id: s for s in spans}

    def ancestors(span: ReadableSpan) -> list[int]:
        chain = []
        while span.parent is not None:
            chain.append(span.parent.span_id)
            span = by_id[span.parent.span_id]
        return chain

    assert all(server.context.span_id in ancestors(statement) for statement in sql)
    page = [s for s in sql if "FROM products" in s.attributes.get("db.query.text", "")]
    assert page and all(s.parent.span_id == root_field.context.span_id for s in page)
    variants = [s for s in sql if "FROM product_variants" in s.attributes.get("db.query.text", "")]
    assert variants and all(operation.context.span_id in ancestors(s) for s in variants)  # loaders, too
    assert all(s.status.status_code is not StatusCode.ERROR for s in spans)


async def test_the_operation_span_follows_the_graphql_semantic_conventions(traced, exporter):
    await traced.data(STOREFRONT, {"first": 2})
    operation = _one(_spans(exporter), lambda s: s.attributes.get("graphql.operation.type") is not None)
    assert operation.name == "query"  # the type only: a client-chosen name would make names unbounded
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "Storefront"
    document = operation.attributes["graphql.document"]
    assert document.startswith("query Storefront($first: Int) { products(first: $first)")
    field = _one(_spans(exporter), lambda s: s.name == "resolve Query.products")
    assert field.attributes["graphql.field.name"] == "products"
    assert field.attributes["graphql.field.path"] == "products"
    assert field.attributes["graphql.field.type"] == "ProductConnection!"


async def test_no_literal_of_the_query_reaches_any_span(traced, exporter):
    query = f"""query Find($search: String) {{
        product(slug: "{SECRET}") {{ name }}
        products(first: 3, search: $search, filter: {{categorySlug: "{SECRET}-2"}}) {{ totalCount }}
        cheap: products(first: 7) {{ totalCount }}
    }}"""
    await traced.data(query, {"search": f"{SECRET}-3"})
    await traced.http.get("/graphql", params={"query": query, "variables": json.dumps({"search": SECRET})})
    spans = _spans(exporter)
    recorded = _everything_recorded(spans)
    assert SECRET not in recorded
    assert "secret" not in recorded
    operation = next(s for s in spans if s.name == "query")
    assert operation.attributes["graphql.document"] == (
        "query Find($search: String) { product(slug: ?) { name } "
        "products(first: ?, search: $search, filter: { categorySlug: ? }) { totalCount } "
        "cheap: products(first: ?) { totalCount } }"
    )


async def test_the_url_query_string_and_the_authorization_header_are_not_recorded(traced, exporter, token_for):
    headers = token_for("dpo")
    response = await traced.http.get(
        "/graphql", params={"query": f'{{ product(slug: "{SECRET}") {{ name }} }}'}, headers=headers
    )
    assert response.status_code == 200
    recorded = _everything_recorded(_spans(exporter))
    assert SECRET not in recorded and "secret" not in recorded
    assert headers["Authorization"].split()[1] not in recorded
    server = _one(_spans(exporter), lambda s: s.kind is SpanKind.SERVER)
    assert server.attributes.get("http.target", server.attributes.get("url.path")) == "/graphql"
    client_keys = {"client.address", "client.port", "net.peer.ip", "net.peer.port", "network.peer.address"}
    assert not client_keys & set(server.attributes or {})  # the client's address is personal data


async def test_a_masked_internal_error_quotes_the_trace_id_of_the_spans_and_nothing_of_the_message(
    traced, exporter, monkeypatch, caplog
):
    from commerce.catalog import service

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"cannot load {SECRET}")

    monkeypatch.setattr(service, "product_by_slug", broken)
    with caplog.at_level("DEBUG"):
        body = await traced.execute('{ product(slug: "whatever") { name } }')
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert SECRET not in json.dumps(body)
    logged = caplog.text  # messages and any formatted exception
    assert error["extensions"]["traceId"] in logged and "RuntimeError" in logged  # the log finds it by trace id
    assert SECRET not in logged  # but holds nothing of the message

    spans = _spans(exporter)
    trace_ids = {format(s.context.trace_id, "032x") for s in spans}
    assert trace_ids == {error["extensions"]["traceId"]}
    assert error["extensions"]["traceId"] in error["message"]
    recorded = _everything_recorded(spans)
    assert SECRET not in recorded
    operation = _one(spans, lambda s: s.name == "query")
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes["error.type"] == "INTERNAL_SERVER_ERROR"
    assert operation.attributes["graphql.error.count"] == 1
    assert [e.attributes["exception.type"] for e in operation.events] == ["builtins.RuntimeError"]
    field = _one(spans, lambda s: s.name == "resolve Query.product")
    assert field.status.status_code is StatusCode.ERROR
    assert field.attributes["error.type"] == "builtins.RuntimeError"
    assert [e.attributes["exception.type"] for e in field.events] == ["builtins.RuntimeError"]


async def test_a_client_error_is_recorded_by_code_without_its_message(traced, exporter):
    body = await traced.execute('{ node(id: "secret-at-example-com") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    spans = _spans(exporter)
    operation = _one(spans, lambda s: s.name == "query")
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes["error.type"] == "BAD_USER_INPUT"
    assert "secret-at-example-com" not in _everything_recorded(spans)


async def test_resolver_spans_cover_every_custom_resolver_only_when_asked(traced_resolvers, traced, exporter):
    query = "{ products(first: 2) { edges { node { slug category { name } variants { sku } } } } }"
    await traced.data(query)
    assert not [s for s in _spans(exporter) if s.name == "resolve Product.category"]
    exporter.clear()
    await traced_resolvers.data(query)
    spans = _spans(exporter)
    categories = [s for s in spans if s.name == "resolve Product.category"]
    assert len(categories) == 2
    assert categories[0].attributes["graphql.field.path"] == "products.edges.0.node.category"
    assert not [s for s in spans if s.name.startswith("resolve Product.slug")]  # plain attributes: no span


async def test_a_failing_statement_is_recorded_by_type_not_by_the_drivers_message(traced_runtime, exporter):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    engine = traced_runtime[0].services.engine
    with pytest.raises(IntegrityError):  # a duplicate code: PostgreSQL's DETAIL would quote the values
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO channels (code, name, kind, currency) SELECT code, :name, kind, currency FROM channels"
                ),
                {"name": SECRET},
            )
    failed = [s for s in _spans(exporter) if s.status.status_code is StatusCode.ERROR]
    assert failed
    assert SECRET not in _everything_recorded(_spans(exporter))
    assert "INSERT INTO channels" in failed[0].attributes.get(
        "db.statement", failed[0].attributes.get("db.query.text", "")
    )


def test_the_sanitized_document_keeps_shape_variables_enums_and_booleans():
    document = parse(
        'query Q($id: ID!, $n: Int = 5, $s: String = "x@y.pl") { locations(kind: STORE) { code } '
        'a: node(id: $id) { id @include(if: true) } products(first: 10, filter: {categorySlug: "a", availableAtLocationId: $id}, search: """b""") { totalCount } '
        "x: __typename }"
    )
    assert sanitize_document(document) == (
        "query Q($id: ID!, $n: Int = ?, $s: String = ?) { locations(kind: STORE) { code } "
        "a: node(id: $id) { id @include(if: true) } "
        "products( first: ? filter: { categorySlug: ?, availableAtLocationId: $id } search: ? ) { totalCount } "
        "x: __typename }"
    )


def test_the_exporter_follows_the_standard_otel_variables():
    settings = Settings()
    silent = build_tracer_provider(settings, env={})
    assert not silent._active_span_processor._span_processors
    assert silent.resource.attributes["service.name"] == "omnigate"
    assert not silent.get_tracer("t").start_span("s").is_recording()
    exporting = build_tracer_provider(settings, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:18100"})
    try:
        [processor] = exporting._active_span_processor._span_processors
        assert type(processor.span_exporter).__name__  # type: ignore[attr-defined]  # a BatchSpanProcessor == "OTLPSpanExporter"
    finally:
        exporting.shutdown()


async def test_another_resolver_wrapper_composes_with_the_tracing_one(traced_runtime, exporter):
    """An authorization layer wraps `GraphQLField.resolve` after tracing did: both run, once each."""
    runtime, client = traced_runtime
    field = runtime.executor.graphql_schema.query_type.fields["channels"]
    traced_resolve = field.resolve
    calls: list[str] = []

    def guarded(source: Any, info: Any, **arguments: Any) -> Any:
        calls.append(info.field_name)
        return traced_resolve(source, info, **arguments)

    field.resolve = guarded
    data = await client.data("{ channels { code } }")
    assert data["channels"]
    assert calls == ["channels"]
    assert len([s for s in _spans(exporter) if s.name == "resolve Query.channels"]) == 1
    assert traced_resolve.__wrapped__ is not None  # the tracing wrapper keeps what it wrapped


async def test_without_an_exporter_nothing_is_recorded_but_masked_errors_still_carry_a_trace_id(gql, monkeypatch):
    from commerce.catalog import service

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "product_by_slug", broken)
    body = await gql.execute(
        '{ product(slug: "x") { name } }',
        headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )
    assert body["errors"][0]["extensions"]["traceId"] == "0af7651916cd43dd8448eb211c80319c"


async def test_without_an_exporter_every_response_still_names_its_trace(gql):
    """The caller's trace continues (a new span id, not sampled here), or a new one starts."""
    caller = "0af7651916cd43dd8448eb211c80319c"
    response = await gql.post("{ channels { code } }", headers={"traceparent": f"00-{caller}-b7ad6b7169203331-01"})
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    assert (version, trace_id, flags) == ("00", caller, "00")
    assert span_id != "b7ad6b7169203331" and int(span_id, 16)
    first, second = [(await gql.post("{ channels { code } }")).headers["traceresponse"].split("-")[1] for _ in range(2)]
    assert first != second and int(first, 16) and int(second, 16)


def _statement_hooks(runtime: Runtime) -> int:
    return sum(len(e.dispatch.before_cursor_execute) for e in statement_engines(runtime.services.engine))


async def test_statements_are_traced_only_when_something_records_them(runtime, traced_runtime):
    # No exporter configured (the default): a statement hook would record nothing, so there is none.
    assert _statement_hooks(runtime) == 0
    # With a recording provider every statement gets its span (see the SQL span tests above).
    assert _statement_hooks(traced_runtime[0]) > 0


async def test_signing_up_and_in_leaves_no_personal_data_in_any_span(traced_resolvers, exporter):
    """Email, password, names and phone travel as variables and as results: none reaches a span."""
    helpers = pytest.importorskip("tests.customers.helpers", reason="needs the customers branch (the vault)")
    person = {
        "email": "ada.pii@example.com",
        "first": "Adalinde",
        "last": "Piisecret",
        "phone": "+48600111222",
        "password": "hunter2-very-secret",
    }
    customer = await helpers.register(
        traced_resolvers, person["email"], person["first"], person["last"], person["phone"], person["password"]
    )
    headers = await helpers.sign_in(traced_resolvers, person["email"], person["password"])
    await traced_resolvers.data("{ me { email firstName lastName phone } }", headers=headers)
    literal = f'mutation {{ customerAccessTokenCreate(email: "{person["email"]}", password: "{person["password"]}") {{ userErrors {{ code }} }} }}'
    await traced_resolvers.execute(literal)
    recorded = _everything_recorded(_spans(exporter))
    for value in [*person.values(), customer["id"], headers["Authorization"].split()[1], "Adalinde", "600111222"]:
        assert value not in recorded, value
    assert any(s.name == "mutation" for s in _spans(exporter))


async def test_every_response_names_its_trace_in_a_traceresponse_header(traced, exporter):
    response = await traced.post("{ channels { code } }")
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    server = _one(_spans(exporter), lambda s: s.kind is SpanKind.SERVER)
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert trace_id == format(server.context.trace_id, "032x") and span_id == format(server.context.span_id, "016x")


async def test_http_and_database_spans_carry_the_stable_semantic_convention_names(traced_runtime, exporter):
    runtime, client = traced_runtime
    response = await client.post("{ channels { code } }", headers={"User-Agent": "Secret-Browser/1.0"})
    assert response.status_code == 200
    spans = _spans(exporter)
    server = _one(spans, lambda s: s.kind is SpanKind.SERVER)
    assert server.name == "POST /graphql"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == "/graphql"
    assert server.attributes["url.path"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    old_or_revealing = {"http.method", "http.target", "http.status_code", "http.user_agent", "user_agent.original"}
    assert not old_or_revealing & set(server.attributes or {})
    assert "http.host" not in server.attributes and "http.server_name" not in server.attributes
    assert "Secret-Browser" not in _everything_recorded(spans) and "test" not in server.attributes.values()

    sql = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert sql
    database = runtime.services.engine.url.database
    for statement in sql:
        assert statement.attributes["db.system.name"] in ("sqlite", "postgresql")
        assert statement.attributes["db.query.text"]
        assert statement.attributes["db.operation.name"] == statement.attributes["db.query.text"].split()[0].upper()
        assert not {"db.statement", "db.system", "db.name", "db.operation"} & set(statement.attributes or {})
    if runtime.services.engine.dialect.name == "sqlite":
        assert all(s.name.split()[-1] == "main" and s.attributes["db.namespace"] == "main" for s in sql)
        assert database not in _everything_recorded(sql)  # the file's path: a detail of the host
    else:
        assert all(s.name.endswith(f" {database}") for s in sql), [s.name for s in sql]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ products(first: 2) { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ products(first: ", "GRAPHQL_PARSE_FAILED"),
    ],
)
async def test_an_operation_refused_before_it_runs_has_its_span_in_error(traced, exporter, document, code):
    body = await traced.execute(document)
    assert body["errors"][0]["extensions"]["code"] == code
    operation = _one(_spans(exporter), lambda s: s.kind is SpanKind.INTERNAL)
    assert operation.name in ("query", "GraphQL Operation")
    assert operation.status.status_code is StatusCode.ERROR
    assert operation.attributes["error.type"] == code
    assert operation.attributes["graphql.error.count"] == len(body["errors"])


async def test_the_operation_name_goes_into_the_span_name_only_when_asked(settings, clock, exporter):
    query = "query Storefront { channels { code } }"
    async for _, client in _traced_client(settings.replace(trace_operation_name=True), clock, exporter):
        await client.data(query)
        await client.data("{ channels { code } }")
    names = {s.name for s in _spans(exporter) if s.attributes.get("graphql.operation.type")}
    assert names == {"query Storefront", "query"}


async def test_a_made_up_method_does_not_name_the_request_span(traced, exporter):
    """The span name is `{method} {route}` only for a method the conventions know, else `HTTP {route}`."""
    assert (await traced.http.request("BREW1", "/graphql")).status_code == 405
    [span] = _spans(exporter)
    assert span.name == "HTTP /graphql" and span.attributes["http.request.method"] == "_OTHER"
