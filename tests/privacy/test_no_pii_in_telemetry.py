"""No personal data of the person in the logs or the spans captured during a whole data-subject
scenario: registration, consents, carts, an agent's look-up, rectification, export, erasure."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.runtime import build_runtime
from tests.conftest import GraphQLClient
from tests.privacy.helpers import dpo_erase, dpo_export, found_in
from tests.privacy.test_data_subject_requests import EMAIL, _customer_who_did_everything

NEEDLES = [EMAIL, "Ewelina", "Kowalska", "601234567", "601 234 567", "Marszalkowska", "00-061", "Wiktoria"]


def _span_text(exporter: InMemorySpanExporter) -> str:
    return json.dumps(
        [
            {
                "name": s.name,
                "attributes": dict(s.attributes or {}),
                "events": [(e.name, dict(e.attributes or {})) for e in s.events],
                "status": s.status.description,
            }
            for s in exporter.get_finished_spans()
        ],
        default=str,
    )


async def test_the_whole_scenario_leaves_no_personal_data_in_logs_or_spans(settings, clock, token_for, caplog):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = build_runtime(settings.replace(trace_resolvers=True), clock, tracer_provider=provider)
    app = create_app(runtime.settings, runtime=runtime)
    caplog.set_level(logging.DEBUG)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            gql = GraphQLClient(http)
            person = await _customer_who_did_everything(gql, runtime, token_for)
            rename = """mutation { customerUpdate(input: {firstName: "Wiktoria"}) { userErrors { code } } }"""
            assert (await gql.data(rename, headers=person["token"]))["customerUpdate"]["userErrors"] == []
            dpo = token_for("dpo", subject="dpo-1")
            export: dict[str, Any] = (await dpo_export(gql, dpo, person["customer"]["id"]))["request"]["export"]
            assert export["data"]["profile"]["firstName"] == "Wiktoria"  # rectified
            await dpo_erase(gql, dpo, person["customer"]["id"])
            await gql.post("{ me { id } }", headers=person["token"])  # refused, and says nothing personal
    finally:
        await runtime.aclose()
        provider.shutdown()
    spans = _span_text(exporter)
    assert len(exporter.get_finished_spans()) > 50  # the scenario was traced
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert found_in(spans, NEEDLES) == [] and found_in(logs, NEEDLES) == []
