"""Metrics beside traces: scraped from /metrics after a few operations, and exported via OTEL_*."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings
from gateway import metrics as metrics_module
from gateway.app import create_app
from gateway.metrics import Metrics, build_meter_provider
from gateway.runtime import Runtime, build_runtime
from gateway.telemetry import service_resource
from tests.conftest import GraphQLClient


@pytest.fixture
async def scraped(settings: Settings, clock: Any) -> AsyncIterator[tuple[Runtime, GraphQLClient]]:
    runtime = build_runtime(settings.replace(metrics_prometheus=True), clock)
    app = create_app(runtime.settings, runtime=runtime)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield runtime, GraphQLClient(http)
    finally:
        await runtime.aclose()


async def scrape(client: GraphQLClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of /metrics by sample name: [(labels, value)]."""
    response = await client.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels` (0 when there is none)."""
    found = [v for sample_labels, v in samples.get(name, []) if labels.items() <= sample_labels.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


async def test_metrics_show_request_durations_operations_errors_fallbacks_and_the_pool(scraped):
    _, client = scraped
    for _ in range(3):
        await client.data("query Storefront { products(first: 2) { edges { node { name } } } }")
    await client.data("{ channels { code } }")
    await client.data("{ __schema { queryType { name } } }")  # introspection: graphql-core, not compiled
    invalid = await client.post(
        "{ products(first: 2) { nope } }", headers={"Accept": "application/graphql-response+json"}
    )
    assert invalid.status_code == 400

    samples = await scrape(client)
    graphql = {"http_request_method": "POST", "http_route": "/graphql"}
    assert value(samples, "http_server_request_duration_seconds_count", **graphql, http_response_status_code="200") == 5
    assert value(samples, "http_server_request_duration_seconds_count", **graphql, http_response_status_code="400") == 1
    assert (
        value(
            samples,
            "http_server_request_duration_seconds_bucket",
            **graphql,
            http_response_status_code="200",
            le="+Inf",
        )
        == 5
    )
    assert value(samples, "http_server_request_duration_seconds_sum", **graphql, http_response_status_code="200") > 0

    operations = "omnigate_graphql_operations_total"
    assert (
        value(samples, operations, graphql_operation_type="query", graphql_operation_name="Storefront", error_type="")
        == 3
    )
    assert value(samples, operations, graphql_operation_type="query", graphql_operation_name="", error_type="") == 2
    assert value(samples, operations, error_type="GRAPHQL_VALIDATION_FAILED") == 1
    assert value(samples, "omnigate_graphql_errors_total", error_type="GRAPHQL_VALIDATION_FAILED") == 1
    assert value(samples, "omnigate_graphql_operation_duration_seconds_count", graphql_operation_name="Storefront") == 3
    assert (
        value(samples, "omnigate_graphql_compiled_fallbacks_total", omnigate_fallback_reason="unsupported_document")
        == 1
    )

    pool = "db_client_connection_count"
    assert {labels["db_client_connection_state"] for labels, _ in samples[pool]} == {"used", "idle"}
    assert value(samples, pool, db_client_connection_state="idle") >= 1  # the connections the requests used
    assert value(samples, "db_client_connection_pending_requests") == 0


async def test_a_masked_error_is_counted_by_its_code(scraped, monkeypatch):
    from commerce.catalog import service

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "product_by_slug", broken)
    _, client = scraped
    body = await client.execute('query Product { product(slug: "x") { name } }')
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    samples = await scrape(client)
    labels = {"graphql_operation_name": "Product", "error_type": "INTERNAL_SERVER_ERROR"}
    assert value(samples, "omnigate_graphql_operations_total", **labels) == 1
    assert value(samples, "omnigate_graphql_errors_total", **labels) == 1


async def test_metrics_are_not_served_unless_asked(gql):
    assert (await gql.http.get("/metrics")).status_code == 404


def test_client_chosen_operation_names_are_capped(monkeypatch):
    monkeypatch.setattr(metrics_module, "MAX_OPERATION_NAMES", 2)
    provider, registry = build_meter_provider(Settings(metrics_prometheus=True), service_resource(Settings()), env={})
    metrics = Metrics(provider, registry)
    try:
        for name in ("A", "B", "C", "D", "A"):
            metrics.record_operation("query", name, [], 0.001)
        metrics.watch_outbox_backlog(lambda: 7)
        text = metrics.scrape().decode()
        samples = {
            (s.labels.get("graphql_operation_name"), s.name): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
    finally:
        metrics.shutdown()
    assert samples[("A", "omnigate_graphql_operations_total")] == 2
    assert samples[("_OTHER", "omnigate_graphql_operations_total")] == 2  # C and D: past the cap
    assert ("C", "omnigate_graphql_operations_total") not in samples
    assert samples[(None, "omnigate_outbox_backlog")] == 7  # the outbox's hook


def test_metrics_are_exported_through_the_standard_otel_variables():
    settings = Settings()
    resource = service_resource(settings)
    silent, registry = build_meter_provider(settings, resource, env={})
    assert registry is None and not silent._metric_readers
    exporting, _ = build_meter_provider(
        settings, resource, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:18100"}
    )
    try:
        [reader] = exporting._metric_readers
        assert type(getattr(reader, "_exporter", None)).__name__ == "OTLPMetricExporter"
    finally:
        exporting.shutdown(timeout_millis=1000)
    disabled, _ = build_meter_provider(
        settings.replace(metrics_prometheus=True), resource, env={"OTEL_SDK_DISABLED": "true"}
    )
    assert not disabled._metric_readers


async def test_a_method_the_client_makes_up_is_counted_as_other(scraped):
    """Any token is a method to HTTP/1.1 (h11 takes them all): each made-up one was a new
    `http.request.method` label value, as many time series as the client liked."""
    _, client = scraped
    for method in ("BREW1", "BREW2", "BREW3"):
        assert (await client.http.request(method, "/graphql")).status_code == 405
    samples = await scrape(client)
    methods = {labels.get("http_request_method") for labels, _ in samples["http_server_request_duration_seconds_count"]}
    assert methods == {"_OTHER"}
