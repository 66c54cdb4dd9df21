"""A document's operations are picked by name once and reused; names it does not have are refused every time."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.runtime import Runtime
from schema.execution import RequestError

DOCUMENT = "query A { channels { code } } query B { products(first: 1) { edges { node { name } } } }"


async def test_each_operation_of_a_document_answers_by_its_name_again_and_again(gql: Any):
    for _ in range(2):
        a = await gql.http.post("/graphql", json={"query": DOCUMENT, "operationName": "A"})
        b = await gql.http.post("/graphql", json={"query": DOCUMENT, "operationName": "B"})
        assert set(a.json()["data"]) == {"channels"} and set(b.json()["data"]) == {"products"}
        unknown = await gql.http.post("/graphql", json={"query": DOCUMENT, "operationName": "C"})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"


def test_the_prepared_operation_is_the_same_object_and_unknown_names_are_not_kept(runtime: Runtime):
    executor = runtime.executor
    a = executor.prepare(DOCUMENT, "A")
    assert executor.prepare(DOCUMENT, "A") is a and a.name == "A"
    assert executor.prepare(DOCUMENT, "B") is not a
    for i in range(50):
        with pytest.raises(RequestError):
            executor.prepare(DOCUMENT, f"Unknown{i}")
    with pytest.raises(RequestError):
        executor.prepare(DOCUMENT, None)  # two operations: one must be named
    assert len(executor._validated(DOCUMENT).operations) == 2
    single = executor.prepare("{ channels { code } }", None)
    assert executor.prepare("{ channels { code } }", None) is single and single.name is None
