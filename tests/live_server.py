"""The app on a real uvicorn server, for tests where a socket matters (WebSocket, processes).

Servers bind port 0 and report the port the OS gave them, and are awaited on their own
"listening" signal: nothing picks a port that another test could take first, nothing sleeps.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.serving import bind, port_from_serving_line, start

__all__ = ["ROOT", "free_port", "gateway_process", "serving"]

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0


def free_port() -> int:
    """A loopback port nobody listens on now, for third-party servers that cannot report the port
    they bound (an SMTP test server). Racy by nature: our own servers bind port 0 instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(runtime: Any) -> AsyncIterator[int]:
    """Serve `runtime` in this event loop on a port the OS picks; yields the port."""
    app = create_app(runtime.settings, runtime=runtime)
    running = await start(app, bind("127.0.0.1", 0), log_level="warning", lifespan="off")
    try:
        yield running.port
    finally:
        await running.stop()


@asynccontextmanager
async def gateway_process(env: Mapping[str, str], *args: str) -> AsyncIterator[int]:
    """A separate `python -m gateway serve --port 0` (another replica); yields the port it printed.

    `serve` prints its address only once it listens and the database answered, so that line
    is the readiness signal; a process that exits first fails with what it wrote to stderr.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        port = await asyncio.wait_for(_printed_port(process.stdout), START_TIMEOUT)
        if port is None:
            await process.wait()
            error = (await process.stderr.read()).decode(errors="replace")
            raise RuntimeError(f"the gateway exited with {process.returncode} before serving: {error}")
        drain = asyncio.create_task(_drain(process.stderr))  # a full pipe would block the server
        try:
            yield port
        finally:
            drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), START_TIMEOUT)


async def _printed_port(stdout: asyncio.StreamReader) -> int | None:
    while line := await stdout.readline():
        port = port_from_serving_line(line)
        if port is not None:
            return port
    return None


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
