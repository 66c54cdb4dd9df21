"""How the /graphql endpoint reads a request: headers as Starlette answers them, the body however it arrives."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.runtime import Runtime

QUERY = "{ channels { code } }"
BODY = json.dumps({"query": QUERY}).encode()


@pytest.fixture(scope="module")
async def database_url(template_db: Any) -> AsyncIterator[str]:
    """These tests only read: one database copy serves the whole module."""
    url = await template_db.copy()
    yield url
    await template_db.drop(url)


async def test_of_a_header_sent_twice_the_first_counts(http: httpx.AsyncClient):
    unknown_first = await http.post(
        "/graphql",
        content=BODY,
        headers=[("Content-Type", "application/json"), ("X-Channel", "nope"), ("X-Channel", "web")],
    )
    assert unknown_first.json()["errors"][0]["extensions"]["code"] == "UNKNOWN_CHANNEL"
    known_first = await http.post(
        "/graphql",
        content=BODY,
        headers=[("Content-Type", "application/json"), ("X-Channel", "web"), ("X-Channel", "nope")],
    )
    assert known_first.status_code == 200 and "errors" not in known_first.json()


async def _call(runtime: Runtime, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The app called as a server would, the request's body arriving as `messages`."""
    app = create_app(runtime.settings, runtime=runtime)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    return sent


async def test_a_body_in_several_messages_is_read_whole(runtime: Runtime):
    parts = [BODY[:5], b"", BODY[5:20], BODY[20:]]
    messages = [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]
    sent = await _call(runtime, messages)
    assert sent[0]["status"] == 200
    assert json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["data"]["channels"]


async def test_a_client_that_leaves_mid_body_ends_the_request_quietly(runtime: Runtime, caplog):
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": BODY[:5], "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await _call(runtime, messages) == []  # nothing sent, nothing raised to the server to log
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_the_graphql_route_keeps_its_name(runtime: Runtime):
    assert create_app(runtime.settings, runtime=runtime).url_path_for("graphql_endpoint") == "/graphql"
