"""Metrics are recorded only while a reader collects them: none is built, a reader added later counts from then."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from gateway.metrics import Metrics


def _operation_counts(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    counts: dict[str, int] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "omnigate.graphql.operations":
                    for point in metric.data.data_points:
                        counts[str(point.attributes.get("graphql.operation.name"))] = int(point.value)
    return counts


def test_without_a_reader_nothing_is_recorded_and_a_reader_added_later_sees_what_follows():
    provider = MeterProvider(metric_readers=[], shutdown_on_exit=False)
    metrics = Metrics(provider)
    try:
        assert not metrics.read
        metrics.record_operation("query", "Before", [], 0.001)
        metrics.record_http("POST", "/graphql", 200, 0.001)
        assert not metrics._names  # not even the operation name is kept for a cap nobody sees

        reader = InMemoryMetricReader()
        provider.add_metric_reader(reader)
        assert metrics.read
        metrics.record_operation("query", "After", ["BAD_USER_INPUT"], 0.001)
        assert _operation_counts(reader) == {"After": 1}
    finally:
        metrics.shutdown()


def test_with_a_reader_every_operation_is_recorded():
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader], shutdown_on_exit=False))
    try:
        assert metrics.read
        for name in ("A", "A", "B"):
            metrics.record_operation("query", name, [], 0.001)
        assert _operation_counts(reader) == {"A": 2, "B": 1}
    finally:
        metrics.shutdown()
