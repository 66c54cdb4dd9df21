"""When the database goes away: 503 + Retry-After with a retryable code, readiness says so, the log
reports the outage once per interval, and service comes back by itself.

PostgreSQL is reached through an in-process TCP proxy that can cut every connection, refuse
new ones and restore them; SQLite through a path that cannot be opened until it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import build_runtime
from tests.conftest import GraphQLClient

QUERY = "{ products(first: 2) { edges { node { name } } } }"
REQUESTS_DURING_OUTAGE = 30


class TcpProxy:
    """127.0.0.1:<port> forwarded to `target`; `cut()` drops every connection, `refuse()` stops
    listening (connections are refused), `restore()` listens again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._pipes |= {client_writer, server_writer}
        for reader, writer in ((client_reader, server_writer), (server_reader, client_writer)):
            task = asyncio.create_task(self._pump(reader, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._pipes.discard(writer)

    def cut(self) -> None:
        for writer in list(self._pipes):
            writer.transport.abort()  # a reset, as a network failure or a restarted server does
        self._pipes.clear()

    async def refuse(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.refuse()
        self.cut()
        for task in list(self._tasks):
            task.cancel()


@contextlib.asynccontextmanager
async def client_for(settings: Settings, clock: Any) -> AsyncIterator[GraphQLClient]:
    runtime = build_runtime(settings, clock)
    app = create_app(settings, runtime=runtime)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            yield GraphQLClient(http)
    finally:
        await runtime.aclose()


async def assert_unavailable(client: GraphQLClient, settings: Settings) -> None:
    """Every request answers 503, retry later; liveness still says ok, readiness does not."""
    for _ in range(REQUESTS_DURING_OUTAGE):
        response = await client.post(QUERY)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == str(settings.database_retry_after_seconds)
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        assert error["extensions"]["traceId"]
    assert (await client.http.get("/health")).json() == {"status": "ok"}
    ready = await client.http.get("/ready")
    assert ready.status_code == 503 and ready.headers["retry-after"]


async def assert_available(client: GraphQLClient) -> None:
    assert len((await client.data(QUERY))["products"]["edges"]) == 2
    assert (await client.http.get("/ready")).status_code == 200


def assert_outage_logged_briefly(caplog: pytest.LogCaptureFixture) -> None:
    """One line when it began (and one per interval after), one when it ended; no stack traces."""
    records = [r for r in caplog.records if r.name.startswith("omnigate")]
    down = [r for r in records if "unreachable" in r.getMessage()]
    assert 1 <= len(down) <= 2, [r.getMessage() for r in records]
    assert "request(s) answered 503" in down[0].getMessage()
    assert any("answers again" in r.getMessage() for r in records)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]  # any logger
    assert "Traceback" not in caplog.text and "unexpected" not in caplog.text


async def test_postgresql_cut_and_refused_then_back(settings, clock, caplog):
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the TCP proxy stands in front of PostgreSQL")
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    proxied_settings = settings.replace(database_url=proxied, database_timeout_seconds=1.0)
    try:
        async with client_for(proxied_settings, clock) as client:
            await assert_available(client)
            caplog.set_level(logging.INFO)
            proxy.cut()
            await proxy.refuse()
            await assert_unavailable(client, proxied_settings)
            await proxy.restore()
            await assert_available(client)  # no restart: the pool reconnects by itself
            assert_outage_logged_briefly(caplog)
    finally:
        await proxy.close()


async def test_postgresql_connections_cut_while_it_still_listens_are_absorbed(settings, clock):
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the TCP proxy stands in front of PostgreSQL")
    url = make_url(settings.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        async with client_for(settings.replace(database_url=proxied), clock) as client:
            await assert_available(client)
            proxy.cut()
            await assert_available(client)  # pre-ping finds the dead connections and opens new ones
    finally:
        await proxy.close()


async def test_sqlite_file_that_cannot_be_opened_then_can(settings, clock, caplog, tmp_path: Path):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the SQLite variant")
    source = Path(make_url(settings.database_url).database or "")
    target = tmp_path / "mounted-later" / "omnigate.db"
    later = settings.replace(database_url=f"sqlite+aiosqlite:///{target}")
    async with client_for(later, clock) as client:
        caplog.set_level(logging.INFO)
        await assert_unavailable(client, later)
        target.parent.mkdir()
        shutil.copyfile(source, target)
        await assert_available(client)
        assert_outage_logged_briefly(caplog)
