"""The compiled path checks its assumptions at start-up and falls back to graphql-core, loudly."""

from __future__ import annotations

import logging

import pytest

from gateway.runtime import build_runtime
from schema.compiled import plan as planning
from schema.compiled.selfcheck import incompatibilities


def test_the_installed_libraries_fit_the_compiled_path(runtime):
    assert incompatibilities(runtime.executor.graphql_schema) == []
    assert runtime.executor.compiler is not None


async def test_an_unrecognised_strawberry_turns_compiled_queries_off_with_an_error(
    settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(planning, "_BASIC_RESOLVER_CODE", None)
    with caplog.at_level(logging.ERROR, logger="omnigate.graphql.compiled"):
        runtime = build_runtime(settings)
    try:
        assert runtime.executor.compiler is None  # graphql-core answers every query
        assert "compiled queries OFF" in caplog.text
    finally:
        await runtime.aclose()


async def test_an_unrecognised_resolver_wrapper_is_said_and_only_costs_speed(
    settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from schema.compiled import direct

    monkeypatch.setattr(direct, "_WRAPPER_CODES", ())
    monkeypatch.setattr(direct, "wrapper_codes", lambda: ())
    with caplog.at_level(logging.WARNING, logger="omnigate.graphql.compiled"):
        runtime = build_runtime(settings)
    try:
        assert runtime.executor.compiler is not None  # still compiled: resolvers just go through strawberry
        assert "resolver wrapper not recognised" in caplog.text
        definition = runtime.executor.graphql_schema.query_type.fields["products"]
        assert direct.direct_call(definition) is None
    finally:
        await runtime.aclose()
