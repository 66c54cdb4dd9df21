"""Persisted operations: APQ's hash-then-register round trip (POST, GET and WebSocket) and trusted documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from gateway.app import create_app
from gateway.persisted import sha256_hex
from gateway.runtime import build_runtime
from tests.live_server import serving
from tests.policy.test_websocket import _next, _socket

QUERY = "query Channels { channels { code } }"
APQ = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(QUERY)}}


@pytest.fixture
async def client_for(settings: Settings):
    """An HTTP client on an app built with these settings changes."""
    clients: list[tuple[httpx.AsyncClient, object]] = []

    async def make(**changes: object) -> httpx.AsyncClient:
        runtime = build_runtime(settings.replace(**changes))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(runtime.settings, runtime=runtime)), base_url="http://test"
        )
        clients.append((client, runtime))
        return client

    yield make
    for client, runtime in clients:
        await client.aclose()
        await runtime.aclose()  # type: ignore[attr-defined]


@pytest.fixture
def trusted_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "trusted"
    (directory / "storefront").mkdir(parents=True)
    (directory / "storefront" / "channels.graphql").write_text(QUERY + "\n")
    return directory


def _codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def _apq(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}


async def test_apq_unknown_hash_then_register_then_hash_alone_over_post_and_get(http: httpx.AsyncClient):
    first = await http.post("/graphql", json={"extensions": APQ})
    assert _codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = await http.post("/graphql", json={"query": QUERY, "extensions": APQ})
    assert registered.json()["data"]["channels"]
    again = await http.post("/graphql", json={"extensions": APQ})
    assert again.json() == registered.json()
    by_get = await http.get("/graphql", params={"extensions": json.dumps(APQ)})
    assert by_get.status_code == 200
    assert by_get.json() == registered.json()


async def test_apq_refuses_a_document_whose_hash_is_not_the_one_sent(http: httpx.AsyncClient):
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex("{ other }")}}
    response = await http.post("/graphql", json={"query": QUERY, "extensions": wrong})
    assert _codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert _codes(await http.post("/graphql", json={"extensions": wrong})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_get_cannot_run_a_persisted_mutation(http: httpx.AsyncClient):
    mutation = "mutation { cartCreate { cart { id } } }"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(mutation)}}
    await http.post("/graphql", json={"query": mutation, "extensions": extensions})
    response = await http.get("/graphql", params={"extensions": json.dumps(extensions)})
    assert response.status_code == 405


async def test_trusted_documents_run_by_hash_and_only_they_run_when_required(client_for, trusted_dir: Path):
    http = await client_for(trusted_documents_dir=str(trusted_dir), trusted_documents_only=True)
    by_hash = await http.post("/graphql", json={"extensions": APQ})
    assert by_hash.json()["data"]["channels"]
    sent_in_full = await http.post("/graphql", json={"query": QUERY})  # the same text: trusted
    assert sent_in_full.json()["data"]["channels"]
    other = "{ channels { code name } }"
    refused = await http.post("/graphql", json={"query": other})
    assert _codes(refused) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    not_registered = await http.post(
        "/graphql",
        json={"query": other, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(other)}}},
    )
    assert _codes(not_registered) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    strict = await http.post("/graphql", json={"query": other}, headers={"Accept": "application/graphql-response+json"})
    assert strict.status_code == 400


async def test_trusted_documents_do_not_restrict_anything_unless_required(client_for, trusted_dir: Path):
    http = await client_for(trusted_documents_dir=str(trusted_dir))
    assert (await http.post("/graphql", json={"extensions": APQ})).json()["data"]["channels"]
    assert (await http.post("/graphql", json={"query": "{ channels { name } }"})).json()["data"]["channels"]


def test_trusted_only_without_documents_stops_start_up(settings: Settings):
    with pytest.raises(ValueError, match="TRUSTED_DOCUMENTS_DIR"):
        build_runtime(settings.replace(trusted_documents_only=True))


async def test_apq_not_found_over_get_is_not_kept_by_a_shared_cache(http: httpx.AsyncClient):
    """A CDN keeping the refusal would answer NOT_FOUND for that URL after the client registered it."""
    response = await http.get("/graphql", params={"extensions": json.dumps(APQ)})
    assert _codes(response) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert response.headers["cache-control"] == "private, no-store"


async def test_apq_keeps_no_document_the_executor_refuses(http: httpx.AsyncClient):
    invalid = "{ channels { noSuchField } }"
    too_long = "{ channels { code } }\n" + "#" * 60_000  # over max_query_chars, under the body limit
    for document in (invalid, too_long):
        refused = await http.post("/graphql", json={"query": document, "extensions": _apq(document)})
        assert _codes(refused) in (["GRAPHQL_VALIDATION_FAILED"], ["QUERY_TOO_LARGE"])
        by_hash = await http.post("/graphql", json={"extensions": _apq(document)})
        assert _codes(by_hash) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_keeps_the_most_recently_used_registrations_up_to_its_size(client_for):
    http = await client_for(persisted_query_cache_size=2)
    documents = [f"query Q{n} {{ channels {{ code }} }}" for n in range(3)]
    for document in documents:
        assert (await http.post("/graphql", json={"query": document, "extensions": _apq(document)})).json()["data"]
    found = [_codes(await http.post("/graphql", json={"extensions": _apq(d)})) for d in documents]
    assert found == [["PERSISTED_QUERY_NOT_FOUND"], [], []]


async def test_apq_registering_a_kept_document_again_evicts_nothing(client_for):
    http = await client_for(persisted_query_cache_size=2)
    first, second = (f"query Q{n} {{ channels {{ code }} }}" for n in range(2))
    for document in (first, second, second, second):
        assert (await http.post("/graphql", json={"query": document, "extensions": _apq(document)})).json()["data"]
    assert _codes(await http.post("/graphql", json={"extensions": _apq(first)})) == []


async def test_apq_with_no_room_says_it_is_off_and_still_runs_whole_documents(client_for):
    http = await client_for(persisted_query_cache_size=0)
    assert _codes(await http.post("/graphql", json={"extensions": APQ})) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    sent_whole = await http.post("/graphql", json={"query": QUERY, "extensions": APQ})
    assert sent_whole.json()["data"]["channels"]
    assert _codes(await http.post("/graphql", json={"extensions": APQ})) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


def test_a_negative_apq_size_stops_start_up(settings: Settings):
    with pytest.raises(ValueError, match="PERSISTED_QUERY_CACHE_SIZE"):
        build_runtime(settings.replace(persisted_query_cache_size=-1))


async def _over_websocket(settings: Settings, clock: Any, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first message answering each `subscribe` payload, sent in turn on one connection."""
    runtime = build_runtime(settings, clock)
    answers = []
    try:
        async with serving(runtime) as port, _socket(port, {}) as ws:
            for n, payload in enumerate(payloads):
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": payload}))
                answers.append(await _next(ws))
                if answers[-1]["type"] == "next":
                    assert (await _next(ws))["type"] == "complete"
    finally:
        await runtime.aclose()
    return answers


def _ws_codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [e["extensions"]["code"] for e in message["payload"]]


async def test_trusted_documents_only_holds_over_websocket(settings: Settings, clock, trusted_dir: Path):
    only_trusted = settings.replace(trusted_documents_dir=str(trusted_dir), trusted_documents_only=True)
    mutation = "mutation { cartCreate { cart { id } } }"
    untrusted, registering, by_hash = await _over_websocket(
        only_trusted,
        clock,
        [{"query": mutation}, {"query": mutation, "extensions": _apq(mutation)}, {"extensions": APQ}],
    )
    assert _ws_codes(untrusted) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert _ws_codes(registering) == ["PERSISTED_QUERY_NOT_IN_LIST"]
    assert by_hash["payload"]["data"]["channels"]


async def test_apq_round_trip_over_websocket(settings: Settings, clock):
    unknown, registered, by_hash = await _over_websocket(
        settings, clock, [{"extensions": APQ}, {"query": QUERY, "extensions": APQ}, {"extensions": APQ}]
    )
    assert _ws_codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert by_hash["payload"] == registered["payload"]
    assert by_hash["payload"]["data"]["channels"]


async def test_an_operation_id_used_again_after_complete_runs_its_own_document(settings: Settings, clock):
    """A `complete` may cancel an operation before it ran: what it was sent with goes with it."""
    runtime = build_runtime(settings, clock)
    try:
        async with serving(runtime) as port, _socket(port, {}) as ws:
            for _ in range(20):
                registering = {"query": QUERY, "extensions": APQ}
                await ws.send(json.dumps({"id": "7", "type": "subscribe", "payload": registering}))
                await ws.send(json.dumps({"id": "7", "type": "complete"}))  # at once: it may never run
                other = "{ locations { code } }"
                await ws.send(json.dumps({"id": "7", "type": "subscribe", "payload": {"query": other}}))
                while True:  # the first one's answer if it ran, then the second one's
                    message = await _next(ws)
                    assert message["type"] in ("next", "complete"), message  # not a stale hash's error
                    if message["type"] == "next" and "locations" in (message["payload"].get("data") or {}):
                        break
                assert (await _next(ws))["type"] == "complete"
    finally:
        await runtime.aclose()
