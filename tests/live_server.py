"""The app on a real uvicorn server, for tests where a socket matters (WebSocket, processes)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from gateway.app import create_app

__all__ = ["free_port", "serving"]


def free_port() -> int:
    """A loopback port nobody listens on now (the OS picks it, so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(runtime: Any) -> AsyncIterator[int]:
    """Serve `runtime` in this event loop on a free loopback port; yields the port."""
    port = free_port()
    app = create_app(runtime.settings, runtime=runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the server could not start: raise why
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
