"""Without an exporter, each request's trace id comes from where it always did: the caller's
`traceparent`, whatever propagator the operator configured, or the span already current."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

CALLER = 0x0AF7651916CD43DD8448EB211C80319C


class _OwnHeader(TextMapPropagator):
    """A propagator of another vendor's kind: the trace id in `x-own-trace` (hex)."""

    def extract(self, carrier: Any, context: Context | None = None, getter: Getter[Any] | None = None) -> Context:
        assert getter is not None
        found = getter.get(carrier, "x-own-trace")
        if not found:
            return context or Context()
        parent = SpanContext(int(found[0], 16), 0x1234, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        return trace.set_span_in_context(NonRecordingSpan(parent), context)

    def inject(self, carrier: Any, context: Context | None = None, setter: Setter[Any] | None = None) -> None:
        pass

    @property
    def fields(self) -> set[str]:
        return {"x-own-trace"}


def _trace_id(response: Any) -> int:
    version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
    assert version == "00" and flags == "00" and int(span_id, 16)
    return int(trace_id, 16)


async def test_a_configured_propagator_other_than_w3c_still_names_the_parent(gql, monkeypatch):
    monkeypatch.setattr("opentelemetry.propagate._HTTP_TEXT_FORMAT", _OwnHeader())
    response = await gql.post("{ channels { code } }", headers={"x-own-trace": f"{CALLER:032x}"})
    assert _trace_id(response) == CALLER
    # W3C is not what this operator configured: its header is not read.
    other = await gql.post(
        "{ channels { code } }", headers={"traceparent": f"00-{CALLER + 1:032x}-b7ad6b7169203331-01"}
    )
    assert _trace_id(other) != CALLER + 1


async def test_with_w3c_propagation_a_traceparent_in_any_case_is_continued(gql):
    response = await gql.post("{ channels { code } }", headers={"TraceParent": f"00-{CALLER:032x}-b7ad6b7169203331-01"})
    assert _trace_id(response) == CALLER


@pytest.mark.parametrize(
    ("propagators", "continued"),
    [
        ([TraceContextTextMapPropagator(), W3CBaggagePropagator()], False),  # the default: a fresh context
        (
            [W3CBaggagePropagator(), TraceContextTextMapPropagator()],
            True,
        ),  # baggage first extracts into the current one
    ],
)
async def test_without_a_traceparent_the_span_current_around_the_app_counts_as_extraction_says(
    gql, monkeypatch, propagators, continued
):
    monkeypatch.setattr("opentelemetry.propagate._HTTP_TEXT_FORMAT", CompositePropagator(propagators))
    outer = NonRecordingSpan(SpanContext(CALLER, 0x42, is_remote=False))
    token = otel_context.attach(trace.set_span_in_context(outer))
    try:
        response = await gql.post("{ channels { code } }", headers={"baggage": "k=v"})
    finally:
        otel_context.detach(token)
    assert (_trace_id(response) == CALLER) is continued


def _ids(responses: Iterable[Any]) -> set[int]:
    return {_trace_id(r) for r in responses}


async def test_without_a_traceparent_each_request_starts_a_trace_of_its_own(gql):
    assert len(_ids([await gql.post("{ channels { code } }") for _ in range(3)])) == 3
