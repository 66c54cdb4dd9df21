"""A real webhook receiver on a loopback port the OS picks: plain asyncio HTTP/1.1, keep-alive.

It records every attempt (event id, aggregate, whether it answered 2xx, whether the signature
verified) and can be told to fail: `fail_first` attempts of every event, every attempt of the
events `always_fail` names, or everything while it is `down`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from commerce.events.webhooks import SIGNATURE_HEADER, verify_signature

__all__ = ["Attempt", "Receiver", "receiving"]


@dataclass(frozen=True)
class Attempt:
    event_id: int
    aggregate: str
    ok: bool
    signed: bool
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    secret: str
    fail_first: int = 0
    always_fail: set[int] = field(default_factory=set)
    down: bool = False  # every attempt fails
    attempts: list[Attempt] = field(default_factory=list)
    port: int = 0
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def delivered(self) -> list[Attempt]:
        return [a for a in self.attempts if a.ok]

    def _answer(self, event_id: int) -> bool:
        earlier = sum(1 for a in self.attempts if a.event_id == event_id)
        return not self.down and event_id not in self.always_fail and earlier >= self.fail_first

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                body = json.loads(raw)
                ok = self._answer(body["id"])
                signed = verify_signature(self.secret, headers.get(SIGNATURE_HEADER.lower(), ""), raw, time.time())
                aggregate = f"{body['aggregate']['type']}/{body['aggregate']['id']}"
                self.attempts.append(Attempt(body["id"], aggregate, ok, signed, body, headers))
                status = b"204 No Content" if ok else b"500 Internal Server Error"
                writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()
        for writer in list(receiver.connections):  # kept-alive connections end with the server
            writer.close()
        await server.wait_closed()
