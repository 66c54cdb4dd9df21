"""Metrics with OpenTelemetry, beside the traces: what the gateway counts, and where it goes.

Instruments (semantic-convention names where the conventions define one):
- `http.server.request.duration` (s): every HTTP request, by `http.request.method`,
  `http.response.status_code`, `http.route` (the route template, never the raw path) and
  `error.type` for 5xx answers;
- `omnigate.graphql.operations` and `omnigate.graphql.operation.duration` (s): every GraphQL
  operation by `graphql.operation.type` and, for named operations, `graphql.operation.name`
  (at most `MAX_OPERATION_NAMES` distinct names, then `_OTHER`: clients choose names), with
  `error.type` when it failed; `omnigate.graphql.errors`: the errors themselves, by code;
- `db.client.connection.count` (`db.client.connection.state` used/idle) and
  `db.client.connection.pending_requests`: the SQLAlchemy pool, read when collected;
- `omnigate.graphql.compiled.fallbacks`: queries the compiled path handed to graphql-core,
  by `omnigate.fallback.reason`;
- `omnigate.database.unavailable`: requests answered 503 while the database was unreachable;
- `omnigate.outbox.backlog`: a gauge whose callback the outbox registers (`watch_outbox_backlog`).

Export follows the standard `OTEL_*` variables, like traces: OTLP over HTTP when
`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set (or
`OTEL_METRICS_EXPORTER=otlp`), every `OTEL_METRIC_EXPORT_INTERVAL` ms; `console` on request.
With `OMNIGATE_METRICS_PROMETHEUS=true` they are also served on `/metrics` for scraping.
With no reader at all (neither), nothing is recorded: the SDK would build, clean and sample
each measurement only to hand it to no one (~40 K instructions each, 3 a request), the way
tracing records no span with nothing to export to. A reader added later is read from then on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings

__all__ = ["Metrics", "build_meter_provider", "known_method"]

METER_NAME = "omnigate"
MAX_OPERATION_NAMES = 200
OTHER = "_OTHER"
# The methods the HTTP semantic conventions name; any other a client sends is `_OTHER` (a client
# may send any token as a method: each would otherwise be a new label value and time series).
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"})


def known_method(method: str) -> str:
    """`method` if the conventions name it, else `_OTHER`."""
    return method if method in KNOWN_METHODS else OTHER


# The HTTP semantic conventions' advice for `http.server.request.duration` (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
DURATIONS = ("http.server.request.duration", "omnigate.graphql.operation.duration")


def _metric_exporter_from_env(env: Mapping[str, str]) -> Any:
    chosen = env.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if not chosen:
        endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        chosen = "otlp" if endpoint else "none"
    if chosen in ("none", "prometheus"):  # prometheus: see OMNIGATE_METRICS_PROMETHEUS
        return None
    if chosen == "console":
        return ConsoleMetricExporter()
    if chosen == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()  # endpoint, headers, timeout, temporality: the OTEL_EXPORTER_OTLP_* variables
    raise ValueError(f"OTEL_METRICS_EXPORTER={chosen!r} is not supported here: use otlp, console or none")


def build_meter_provider(
    settings: Settings, resource: Resource, env: Mapping[str, str] | None = None
) -> tuple[MeterProvider, Any]:
    """The process's meter provider and, with `metrics_prometheus`, the registry `/metrics` renders."""
    env = os.environ if env is None else env
    readers: list[MetricReader] = []
    registry = None
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
        exporter = _metric_exporter_from_env(env)
        if exporter is not None:
            readers.append(PeriodicExportingMetricReader(exporter))  # interval: OTEL_METRIC_EXPORT_INTERVAL
        if settings.metrics_prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            registry = CollectorRegistry(auto_describe=True)  # one per runtime: not the process-global one
            readers.append(PrometheusMetricReader(registry=registry))
    views = [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(DURATION_BUCKETS))
        for name in DURATIONS
    ]
    # shut down by the runtime (Telemetry.shutdown), not at exit: tests build many
    return MeterProvider(metric_readers=readers, resource=resource, views=views, shutdown_on_exit=False), registry


@dataclass(slots=True, eq=False)
class Metrics:
    """The instruments of one runtime, and the `/metrics` rendering when Prometheus is on."""

    provider: MeterProvider
    registry: Any = None
    http_duration: Histogram = field(init=False)
    operations: Counter = field(init=False)
    operation_duration: Histogram = field(init=False)
    operation_errors: Counter = field(init=False)
    compiled_fallbacks: Counter = field(init=False)
    database_unavailable: Counter = field(init=False)
    _names: set[str] = field(init=False, default_factory=set)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _consumer: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        # The SDK's measurement consumer holds one storage per reader (replaced, never mutated, on
        # add/remove_metric_reader). Should a later SDK not have it, every measurement is recorded.
        consumer = getattr(self.provider, "_measurement_consumer", None)
        self._consumer = consumer if isinstance(getattr(consumer, "_reader_storages", None), Mapping) else None
        meter = self.provider.get_meter(METER_NAME)
        self.http_duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests."
        )
        self.operations = meter.create_counter(
            "omnigate.graphql.operations", unit="{operation}", description="GraphQL operations run."
        )
        self.operation_duration = meter.create_histogram(
            "omnigate.graphql.operation.duration", unit="s", description="Duration of GraphQL operations."
        )
        self.operation_errors = meter.create_counter(
            "omnigate.graphql.errors", unit="{error}", description="Errors in GraphQL responses, by code."
        )
        self.compiled_fallbacks = meter.create_counter(
            "omnigate.graphql.compiled.fallbacks",
            unit="{operation}",
            description="Queries the compiled path handed to graphql-core, by reason.",
        )
        self.database_unavailable = meter.create_counter(
            "omnigate.database.unavailable",
            unit="{request}",
            description="Requests answered 503 because the database was unreachable.",
        )

    @property
    def prometheus(self) -> bool:
        return self.registry is not None

    # --- recording --------------------------------------------------------------------------

    @property
    def read(self) -> bool:
        """Whether any reader collects what is recorded now (else recording is skipped: see above)."""
        consumer = self._consumer
        return consumer is None or bool(consumer._reader_storages)

    def record_http(self, method: str, route: str | None, status: int, seconds: float) -> None:
        if not self.read:
            return
        attributes: dict[str, Any] = {"http.request.method": known_method(method), "http.response.status_code": status}
        if route:
            attributes["http.route"] = route
        if status >= 500:
            attributes["error.type"] = str(status)
        self.http_duration.record(seconds, attributes)

    def record_operation(
        self, operation_type: str | None, name: str | None, error_codes: list[str], seconds: float | None
    ) -> None:
        """One operation: `error_codes` are its errors' codes (empty when it succeeded)."""
        if not self.read:
            return
        attributes: dict[str, Any] = {}
        if operation_type:
            attributes["graphql.operation.type"] = operation_type
        if name:
            attributes["graphql.operation.name"] = self._bounded(name)
        if seconds is not None:
            self.operation_duration.record(seconds, attributes)
        for code in error_codes:
            self.operation_errors.add(1, {**attributes, "error.type": code})
        if error_codes:
            attributes["error.type"] = gravest(error_codes)
        self.operations.add(1, attributes)

    def record_fallback(self, reason: str) -> None:
        if not self.read:
            return
        self.compiled_fallbacks.add(1, {"omnigate.fallback.reason": reason})

    def record_database_unavailable(self) -> None:
        if not self.read:
            return
        self.database_unavailable.add(1)

    def _bounded(self, name: str) -> str:
        """Client-chosen names are capped: past the limit, new names are counted as `_OTHER`."""
        if name in self._names:
            return name
        with self._lock:
            if len(self._names) >= MAX_OPERATION_NAMES:
                return OTHER
            self._names.add(name)
        return name

    # --- observed when collected -------------------------------------------------------------

    def watch_pool(self, engine: AsyncEngine, pool_name: str = "omnigate") -> None:
        """Connections in use, idle and waited for in the engine's pool, read at each collection."""
        pool = engine.sync_engine.pool
        meter = self.provider.get_meter(METER_NAME)

        def count(_: CallbackOptions) -> Iterable[Observation]:
            checked_out = getattr(pool, "checkedout", None)
            checked_in = getattr(pool, "checkedin", None)
            if checked_out is None or checked_in is None:
                return []
            named = {"db.client.connection.pool.name": pool_name}
            return [
                Observation(checked_out(), {**named, "db.client.connection.state": "used"}),
                Observation(checked_in(), {**named, "db.client.connection.state": "idle"}),
            ]

        def pending(_: CallbackOptions) -> Iterable[Observation]:
            return [Observation(_waiting(pool), {"db.client.connection.pool.name": pool_name})]

        meter.create_observable_up_down_counter(
            "db.client.connection.count", [count], unit="{connection}", description="Connections by state."
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            [pending],
            unit="{request}",
            description="Requests waiting for a connection from the pool.",
        )

    def watch_outbox_backlog(self, backlog: Callable[[], int]) -> None:
        """The hook for the outbox: `backlog()` (events not yet published) is read at each collection."""
        meter = self.provider.get_meter(METER_NAME)
        meter.create_observable_gauge(
            "omnigate.outbox.backlog",
            [lambda _: [Observation(backlog())]],
            unit="{event}",
            description="Outbox events not yet published.",
        )

    # --- export ------------------------------------------------------------------------------

    def scrape(self) -> bytes:
        """The Prometheus text exposition of every instrument (collected now)."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    def shutdown(self) -> None:
        self.provider.shutdown()


def gravest(codes: list[str]) -> str:
    """The code to name a failed operation by: an internal error outranks the client's mistakes."""
    return "INTERNAL_SERVER_ERROR" if "INTERNAL_SERVER_ERROR" in codes else sorted(codes)[0]


def _waiting(pool: Any) -> int:
    """Callers waiting on the pool's queue (SQLAlchemy's async queue wraps an asyncio.Queue).

    SQLAlchemy does not expose this count; it is read from the queue's waiters, and 0 when
    the pool is of another kind.
    """
    queue = vars(getattr(pool, "_pool", None) or object).get("_queue")  # not created here if never used
    getters = getattr(queue, "_getters", None)
    if getters is None:
        return 0
    return sum(1 for waiter in getters if not waiter.done())
