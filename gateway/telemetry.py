"""Tracing with OpenTelemetry: one provider per runtime, and spans that never carry personal data.

What is traced, and what is deliberately left out:
- one SERVER span per HTTP request (the ASGI middleware; its ids go back to the client in a
  W3C `traceresponse` header), without the query string (a GET
  `?query=` carries literals such as an email), without the client address (personal data
  under the GDPR) and with `Authorization`/`Cookie` redacted should an operator opt in to
  header capture (`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`);
- one span per GraphQL operation (`operation_span`), named and described by the GraphQL
  semantic conventions, its `graphql.document` with every literal value replaced by `?`;
- one span per root field (Query/Mutation) resolver, or per custom resolver with
  `trace_resolvers` (expensive: off by default);
- one CLIENT span per SQL statement, its text with placeholders, never the parameters.
Errors put status ERROR and an `error.type` code on the span, never a message: messages of
both our errors and unexpected ones may quote what the user sent. A request refused before it
runs (unparsable, invalid) still gets its operation span, in error.

HTTP and database spans follow the stable semantic conventions (`http.request.method`,
`url.path`, `http.route`, `db.system.name`, `db.query.text`): `OTEL_SEMCONV_STABILITY_OPT_IN`
defaults to `http,database` here (an operator may still set it, e.g. `http/dup` during a
migration of dashboards). The HTTP span carries no user agent and no host header; a SQL span
is named by its operation and the database (`SELECT omnigate`), a SQLite one by `main`, never
by its file's path.

Metrics (gateway/metrics.py) are recorded beside the spans: HTTP request duration here,
GraphQL operations in `execute_traced`.

The exporter follows the standard `OTEL_*` variables (read by the OpenTelemetry SDK, as every
OpenTelemetry deployment expects): OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (or `OTEL_TRACES_EXPORTER=otlp`), `console` on
request, nothing otherwise. With nothing to export to, spans are not recorded at all, but
trace ids still exist (and continue an incoming `traceparent`) so masked errors and logs
can be matched with the caller's trace. Then tracing costs (almost) nothing: no SQL hooks, no
resolver wrappers, and instead of the ASGI instrumentation (which collects a dozen request
attributes for a span nobody records: ~0.15 ms of a storefront request) a middleware that only
puts the request's trace id in context (`_untraced_asgi`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from inspect import isawaitable
from typing import Any

from cachetools import LRUCache
from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    IntValueNode,
    Node,
    Visitor,
    print_ast,
    visit,
)
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import statement_engines
from core.settings import Settings
from gateway.metrics import OTHER, Metrics, build_meter_provider, gravest, known_method
from schema.execution import RequestError, record_exception_type

__all__ = [
    "Telemetry",
    "build_tracer_provider",
    "execute_traced",
    "operation_span",
    "record_refused",
    "record_result",
    "sanitize_document",
    "trace_resolvers",
]

TRACER_NAME = "omnigate"
DEFAULT_SERVICE_NAME = "omnigate"
MAX_DOCUMENT_CHARS = 8_000
PLACEHOLDER = "?"
REDACTED_HEADERS = ["authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key"]
# Request headers the HTTP instrumentation would copy into attributes on its own (a host name,
# a browser's fingerprint): it never sees them.
UNRECORDED_HEADERS = frozenset({b"host", b"user-agent"})
UNKNOWN_OPERATION = "GraphQL Operation"  # the conventions' span name when the type is not known
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


def prefer_stable_semantic_conventions(env: dict[str, str] | os._Environ[str] | None = None) -> None:
    """Have the HTTP and SQLAlchemy instrumentations emit the stable attribute names.

    They read the variable once per process, at their first use: call this before building any
    instrumented object (`Telemetry.build` does). An operator's own setting is left alone.
    """
    (os.environ if env is None else env).setdefault(SEMCONV_OPT_IN, "http,database")


# --- the provider --------------------------------------------------------------------------


def _exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not chosen:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        chosen = "otlp" if endpoint else "none"
    if chosen == "none":
        return None
    if chosen == "console":
        return ConsoleSpanExporter()
    if chosen == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_EXPORTER_OTLP_* variables
    raise ValueError(f"OTEL_TRACES_EXPORTER={chosen!r} is not supported here: use otlp, console or none")


def service_resource(settings: Settings) -> Resource:
    """This service, as traces and metrics name it (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win)."""
    resource = Resource({"deployment.environment.name": settings.environment}).merge(Resource.create())
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def build_tracer_provider(settings: Settings, env: Mapping[str, str] | None = None) -> TracerProvider:
    """The process's provider: a resource naming this service, and the exporter `OTEL_*` asks for."""
    env = os.environ if env is None else env
    resource = service_resource(settings)
    exporter = _exporter_from_env(env)
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or exporter is None:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER, parent-based by default
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


@dataclass(slots=True, eq=False)
class Telemetry:
    """The tracer and the metrics of one runtime; tests hand in a provider with an in-memory exporter."""

    provider: TracerProvider
    tracer: Tracer
    documents: _DocumentCache
    metrics: Metrics
    trace_resolvers: bool = False
    operation_in_span_name: bool = False
    owns_provider: bool = True

    @classmethod
    def build(cls, settings: Settings, provider: TracerProvider | None = None) -> Telemetry:
        prefer_stable_semantic_conventions()
        owns = provider is None
        provider = provider or build_tracer_provider(settings)
        meter_provider, registry = build_meter_provider(settings, service_resource(settings))
        return cls(
            provider=provider,
            tracer=provider.get_tracer(TRACER_NAME),
            documents=_DocumentCache(settings.document_cache_size),
            metrics=Metrics(meter_provider, registry),
            trace_resolvers=settings.trace_resolvers,
            operation_in_span_name=settings.trace_operation_name,
            owns_provider=owns,
        )

    @property
    def recording(self) -> bool:
        """False when no span can be recorded (nothing to export to): then nothing is instrumented."""
        return self.provider.sampler is not ALWAYS_OFF

    def instrument_engine(self, engine: AsyncEngine) -> None:
        self.metrics.watch_pool(engine)
        if self.recording:  # else statement hooks would be pure cost on every query
            for sync_engine in statement_engines(engine):  # reads run on an engine of their own
                _instrument_engine(sync_engine, self.provider)

    def instrument_schema(self, schema: GraphQLSchema) -> None:
        if self.recording:  # else a wrapper per root field, for spans nobody records
            trace_resolvers(schema, self.tracer, all_resolvers=self.trace_resolvers)

    def asgi(self, app: Any) -> Any:
        if not self.recording:
            return _untraced_asgi(app, self.metrics)
        return _asgi_middleware(app, self.provider, self.metrics)

    def shutdown(self) -> None:
        self.metrics.shutdown()
        if self.owns_provider:
            self.provider.shutdown()


# --- HTTP ----------------------------------------------------------------------------------

_HIDDEN = "omnigate.hidden_from_tracing"


def _asgi_middleware(app: Any, provider: TracerProvider, metrics: Metrics) -> Any:
    """The ASGI OpenTelemetry middleware, shown a scope without the query string, the client, the
    host or the user agent; the request's route and duration are added here, once it ran."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.metrics import NoOpMeterProvider

    sanitize = REDACTED_HEADERS + [
        h.strip()
        for h in os.environ.get("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "").split(",")
        if h.strip()
    ]
    completion = _asgi_completion(app, metrics)

    async def restore(scope: dict[str, Any], receive: Any, send: Any) -> None:
        hidden = scope.get(_HIDDEN)
        if hidden is not None:
            scope = {k: v for k, v in scope.items() if k != _HIDDEN}
            scope.update(hidden)
        await completion(scope, receive, send)

    traced = OpenTelemetryMiddleware(
        restore,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),  # the duration is recorded in `restore`, with the route
        exclude_spans=["receive", "send"],
        http_capture_headers_sanitize_fields=sanitize,
    )

    async def hide(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await traced(scope, receive, send)
            return
        headers = scope.get("headers", [])
        hidden = {"query_string": scope.get("query_string", b""), "client": scope.get("client"), "headers": headers}
        shown = [(name, value) for name, value in headers if name.lower() not in UNRECORDED_HEADERS]
        await traced({**scope, "query_string": b"", "client": None, "headers": shown, _HIDDEN: hidden}, receive, send)

    return hide


def _untraced_asgi(app: Any, metrics: Metrics) -> Any:
    """For a provider that records nothing: each request's trace id (continuing the caller's
    `traceparent`, or new) in context, for its `traceresponse` header, masked errors and logs;
    and the request's duration in the HTTP metrics.

    What the ASGI instrumentation leaves behind when its sampler drops the span, without the
    attributes it collects for that span first. One layer, not `_asgi_completion` inside it:
    the span is this function's own, so its ids are at hand and it has no name or attributes
    to set. The default W3C propagators find a parent in nothing but `traceparent`: without
    that header there is none, and the headers are not decoded three times (traceparent,
    tracestate, baggage) to find that out.
    """
    from opentelemetry import propagate
    from opentelemetry.instrumentation.asgi import asgi_getter
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    ids = RandomIdGenerator()
    flags = TraceFlags(TraceFlags.DEFAULT)

    def parent_of(scope: dict[str, Any]) -> SpanContext:
        if _no_parent_without_traceparent(propagate.get_global_textmap()) and not _has_header(scope, b"traceparent"):
            return INVALID_SPAN_CONTEXT
        return trace.get_current_span(propagate.extract(scope, getter=asgi_getter)).get_span_context()

    async def untraced(scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind != "http" and kind != "websocket":
            await app(scope, receive, send)
            return
        parent = parent_of(scope)
        trace_id = parent.trace_id if parent.is_valid else ids.generate_trace_id()
        span_id = ids.generate_span_id()
        span = NonRecordingSpan(
            SpanContext(
                trace_id,
                span_id,
                is_remote=False,
                trace_flags=flags,
                trace_state=parent.trace_state if parent.is_valid else None,
            )
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            if kind != "http":
                await app(scope, receive, send)
                return
            traceresponse = b"00-%032x-%016x-%02x" % (trace_id, span_id, flags)  # as _traceresponse()
            started = time.perf_counter()
            status = 500  # unless the app answers

            async def send_with_trace(message: dict[str, Any]) -> None:
                nonlocal status
                if message.get("type") == "http.response.start":
                    status = int(message.get("status", 500))
                    message = {**message, "headers": [*message.get("headers", []), (b"traceresponse", traceresponse)]}
                await send(message)

            try:
                await app(scope, receive, send_with_trace)
            finally:
                if metrics.read:
                    seconds = time.perf_counter() - started
                    metrics.record_http(scope.get("method", "_OTHER"), _route(scope), status, seconds)
        finally:
            otel_context.detach(token)

    return untraced


@cache
def _no_parent_without_traceparent(textmap: Any) -> bool:
    """Whether `textmap` finds no parent in a request without `traceparent`: W3C propagators
    alone, trace context first (the default). It extracts into a fresh context when the header
    is missing, and baggage adds no span to it. Any other propagator is asked as usual."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parts = getattr(textmap, "_propagators", None) if type(textmap) is CompositePropagator else [textmap]
    if not isinstance(parts, list | tuple) or not parts or type(parts[0]) is not TraceContextTextMapPropagator:
        return False
    return all(type(part) in (TraceContextTextMapPropagator, W3CBaggagePropagator) for part in parts)


def _has_header(scope: dict[str, Any], name: bytes) -> bool:
    """Whether the request carries header `name` (lower case), in any case as the ASGI getter compares."""
    for key, _ in scope.get("headers") or ():  # noqa: SIM110  # a loop, not any(genexpr): no generator
        if key.lower() == name:
            return True
    return False


def _asgi_completion(app: Any, metrics: Metrics) -> Any:
    """Inside the request's span: its route and status on the span, its `traceresponse` header,
    and its duration in the HTTP metrics."""

    async def complete(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        traceresponse = _traceresponse()
        server_span = trace.get_current_span()
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def send_with_trace(message: dict[str, Any]) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
                route = _route(scope)  # routed by now; the span ends with the response's last byte
                if route:
                    server_span.set_attribute("http.route", route)
                    method = known_method(scope.get("method", "HTTP"))  # the conventions' `HTTP` for another
                    server_span.update_name(f"{'HTTP' if method == OTHER else method} {route}")
                if traceresponse:
                    message = {**message, "headers": [*message.get("headers", []), (b"traceresponse", traceresponse)]}
            await send(message)

        try:
            await app(scope, receive, send_with_trace)
        finally:
            metrics.record_http(scope.get("method", "_OTHER"), _route(scope), status, time.perf_counter() - started)

    return complete


def _route(scope: dict[str, Any]) -> str | None:
    """The route template Starlette matched (`/graphql`), never the raw path; None when none did."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return f"{scope.get('root_path', '')}{path}" if isinstance(path, str) else None


def _traceresponse() -> bytes:
    """The W3C `traceresponse` header of the current span: any response can be quoted in a report."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return b""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}".encode()


# --- GraphQL operations --------------------------------------------------------------------


class _Placeholders(Visitor):
    """Every string, int and float literal becomes `?` (printed as is); variables stay."""

    def _placeholder(self, node: Node, *_: Any) -> IntValueNode:
        return IntValueNode(value=PLACEHOLDER)

    enter_string_value = _placeholder
    enter_int_value = _placeholder
    enter_float_value = _placeholder


def sanitize_document(document: Node) -> str:
    """The document on one line without any literal value: `product(slug: ?) { name }`.

    Enum and boolean literals stay (they come from the schema, not from the user); list and
    object literals keep their shape with every scalar inside replaced.
    """
    text = print_ast(visit(document, _Placeholders()), max_indent_depth=0)
    return text[:MAX_DOCUMENT_CHARS]


class _DocumentCache:
    """Sanitized text per parsed document (the executor caches documents, so identity is stable).

    Keyed by `id()` with the document itself kept in the entry, so an id cannot be reused
    while its entry exists; bounded like the executor's own cache.
    """

    def __init__(self, maxsize: int) -> None:
        self._data: LRUCache[int, tuple[Node, str]] = LRUCache(max(1, maxsize))

    def text(self, document: Node) -> str:
        key = id(document)
        entry = self._data.get(key)
        if entry is not None and entry[0] is document:
            return entry[1]
        text = sanitize_document(document)
        self._data[key] = (document, text)
        return text

    def __len__(self) -> int:
        return len(self._data)


@contextmanager
def operation_span(telemetry: Telemetry, prepared: Any) -> Iterator[Span]:
    """The span of one GraphQL operation, for HTTP and WebSocket alike.

    Named `{graphql.operation.type}` as the current semantic conventions recommend (the
    client-chosen operation name would make span names unbounded; it is an attribute), or
    `{type} {name}` with `OMNIGATE_TRACE_OPERATION_NAME` (the conventions allow it where the
    operations are known, e.g. persisted queries).
    Its kind is INTERNAL, not SERVER: the HTTP request already has the one SERVER span.
    Call `record_result` with the result before the block ends.
    """
    if not telemetry.recording:  # the request's (unrecorded) span and trace id stay current
        yield trace.INVALID_SPAN
        return
    operation_type = prepared.operation_type.value
    attributes: dict[str, Any] = {
        "graphql.operation.type": operation_type,
        "graphql.document": telemetry.documents.text(prepared.document),
    }
    name = operation_type
    if prepared.name:
        attributes["graphql.operation.name"] = prepared.name
        if telemetry.operation_in_span_name:
            name = f"{operation_type} {prepared.name}"
    with telemetry.tracer.start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except RequestError:
            raise  # recorded by the caller, with the errors' codes
        except BaseException as exc:
            _fail(span, _error_type(exc))
            record_exception_type(exc, span)
            raise


async def execute_traced(
    runtime: Any, prepared: Any, variables: dict[str, Any] | None, context: Any
) -> ExecutionResult:
    """`runtime.executor.execute` inside its operation span (queries and mutations, any transport),
    counted and timed in the operation metrics."""
    telemetry: Telemetry = runtime.telemetry
    started = time.perf_counter()
    codes: list[str] = []
    try:
        if not telemetry.recording:  # operation_span would open no span: spare its generator
            try:
                result: ExecutionResult = await runtime.executor.execute(prepared, variables, context)
            except RequestError as failure:
                codes = _error_codes(failure.errors)
                raise
            codes = _error_codes(result.errors)
            return result
        with operation_span(telemetry, prepared) as span:
            try:
                result = await runtime.executor.execute(prepared, variables, context)
            except RequestError as failure:  # variables that do not fit: the client's error
                codes = record_result(span, errors=failure.errors)
                raise
            codes = record_result(span, result)
            return result
    except BaseException as exc:
        codes = codes or [_error_type(exc)]
        raise
    finally:
        metrics = telemetry.metrics
        if metrics.read:
            metrics.record_operation(prepared.operation_type.value, prepared.name, codes, time.perf_counter() - started)


def record_refused(telemetry: Telemetry, errors: list[GraphQLError], prepared: Any = None) -> None:
    """An operation refused before it ran (unparsable, invalid, no such operation): its span, in
    error, and its count. Named by its type when the document parsed far enough to tell it."""
    operation_type = prepared.operation_type.value if prepared is not None else None
    with telemetry.tracer.start_as_current_span(
        operation_type or UNKNOWN_OPERATION, kind=SpanKind.INTERNAL, record_exception=False
    ) as span:
        if operation_type:
            span.set_attribute("graphql.operation.type", operation_type)
        codes = record_result(span, errors=errors)
    telemetry.metrics.record_operation(operation_type, prepared.name if prepared is not None else None, codes, None)


def record_result(
    span: Span, result: ExecutionResult | None = None, errors: list[GraphQLError] | None = None
) -> list[str]:
    """Status ERROR with the count and codes of the errors, never their messages; returns the codes."""
    errors = list(result.errors or []) if result is not None else list(errors or [])
    if not errors:
        return []
    codes = _error_codes(errors)
    span.set_attribute("graphql.error.count", len(errors))
    span.set_attribute("graphql.error.codes", sorted(set(codes)))
    _fail(span, gravest(codes))
    return codes


def _error_codes(errors: list[GraphQLError] | None) -> list[str]:
    """The errors' codes (`GRAPHQL_ERROR` for one without), as spans and metrics name them."""
    if not errors:
        return []
    return [str((e.extensions or {}).get("code") or "GRAPHQL_ERROR") for e in errors]


def _error_type(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or (getattr(exc, "extensions", None) or {}).get("code")
    return str(code) if code else f"{type(exc).__module__}.{type(exc).__qualname__}"


def _fail(span: Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


# --- resolvers -----------------------------------------------------------------------------


def trace_resolvers(schema: GraphQLSchema, tracer: Tracer, *, all_resolvers: bool = False) -> None:
    """Wrap `GraphQLField.resolve` of root fields (and of every custom resolver with `all_resolvers`).

    Wraps whatever resolver is there (another layer may have wrapped it already, or may wrap
    ours later), so graphql-core's execution and a compiled path that calls `field.resolve`
    directly are both traced. Call once per schema.
    """
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    for root in roots:
        for name, field in root.fields.items():
            _wrap(field, tracer, root.name, name)
    if not all_resolvers:
        return
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and type_ not in roots and not type_.name.startswith("__"):
            for name, field in type_.fields.items():
                if _has_custom_resolver(field):
                    _wrap(field, tracer, type_.name, name)


def _has_custom_resolver(field: GraphQLField) -> bool:
    definition = (field.extensions or {}).get("strawberry-definition")
    return definition is not None and getattr(definition, "base_resolver", None) is not None


def _wrap(field: GraphQLField, tracer: Tracer, parent_type: str, name: str) -> None:
    from graphql import default_field_resolver

    inner: Callable[..., Any] = field.resolve or default_field_resolver
    span_name = f"resolve {parent_type}.{name}"
    field_type = str(field.type)

    def resolve(source: Any, info: Any, **arguments: Any) -> Any:
        span = tracer.start_span(
            span_name,
            attributes={
                "graphql.field.name": name,
                "graphql.field.parent_type": parent_type,
                "graphql.field.type": field_type,
                "graphql.field.path": _path(info, name),
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = inner(source, info, **arguments)
        except BaseException as exc:
            _resolver_failed(span, exc)
            span.end()
            raise
        finally:
            otel_context.detach(token)
        if isawaitable(result):
            return _finish(span, result)
        span.end()
        return result

    resolve.__wrapped__ = inner  # type: ignore[attr-defined]
    field.resolve = resolve


def _path(info: Any, name: str) -> str:
    """`products.edges.0.node.category`; a compiled path's lighter `info` may carry no path."""
    path = getattr(info, "path", None)
    return ".".join(str(key) for key in path.as_list()) if path is not None else name


async def _finish(span: Span, awaitable: Any) -> Any:
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            return await awaitable
        except BaseException as exc:
            _resolver_failed(span, exc)
            raise


def _resolver_failed(span: Span, exc: BaseException) -> None:
    if isinstance(exc, GraphQLError):
        _fail(span, _error_type(exc))
        return
    _fail(span, f"{type(exc).__module__}.{type(exc).__qualname__}")
    record_exception_type(exc, span)


# --- SQL -----------------------------------------------------------------------------------


def _instrument_engine(sync_engine: Engine, provider: TracerProvider) -> None:
    """A span per statement on this engine only (not the global `instrument()`, which patches
    `create_engine` process-wide for the first provider), with sqlcommenter off, and an error
    status that names the exception type instead of quoting the driver's message (PostgreSQL's
    DETAIL repeats the offending values)."""
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import _handle_error
    from opentelemetry.metrics import NoOpMeterProvider

    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    usage = NoOpMeterProvider().get_meter("omnigate").create_up_down_counter("db.client.connections.usage")
    _engine_tracer_class()(tracer, sync_engine, usage, enable_commenter=False)  # the pool: gateway/metrics.py
    if event.contains(sync_engine, "handle_error", _handle_error):
        event.remove(sync_engine, "handle_error", _handle_error)
    event.listen(sync_engine, "handle_error", _statement_failed)


# A SQLite database's name is its file's path: a detail of the host, useless to group by.
SQLITE_NAMESPACE = "main"  # what SQLite itself calls the database a connection opened
_NAMESPACE_KEYS = ("db.namespace", "db.name")


@cache
def _engine_tracer_class() -> type:
    """The instrumentation's EngineTracer, naming a SQLite database `main` instead of by its path."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    class NamedEngineTracer(EngineTracer):
        def _operation_name(self, db_name: Any, statement: Any) -> str:
            return str(super()._operation_name(self._namespace(db_name), statement))

        def _set_db_client_span_attributes(self, span: Span, statement: Any, db_name: Any, attrs: Any) -> None:
            if self.vendor == "sqlite":
                attrs = {k: v for k, v in attrs.items() if k not in _NAMESPACE_KEYS}
                attrs["db.namespace"] = SQLITE_NAMESPACE
            super()._set_db_client_span_attributes(span, statement, db_name, attrs)
            if not isinstance(statement, str):
                return
            # db.operation.name is the statement's first word; the instrumentation appends the database.
            words = statement.split(maxsplit=1)
            if words:
                span.set_attribute("db.operation.name", words[0].upper())

        def _namespace(self, db_name: Any) -> Any:
            if self.vendor == "sqlite":
                return SQLITE_NAMESPACE
            return db_name or self._database  # asyncpg's cursor does not tell it: the URL does

        def __init__(self, tracer: Tracer, engine: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(tracer, engine, *args, **kwargs)
            self._database = engine.url.database

    return NamedEngineTracer


def _statement_failed(context: Any) -> None:
    span = getattr(context.execution_context, "_otel_span", None)
    if span is None:
        return
    if span.is_recording():
        _fail(span, type(context.original_exception).__qualname__)
    span.end()
