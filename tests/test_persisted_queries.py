"""Persisted operations: APQ's hash-then-register round trip (POST and GET) and trusted documents."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from gateway.app import create_app
from gateway.persisted import sha256_hex
from gateway.runtime import build_runtime

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
