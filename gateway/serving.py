"""Serving the app with uvicorn on a socket we bound ourselves, with a signal once it listens.

Binding first (instead of handing uvicorn a host and port) lets the command line report a
port in use as a one-line error, lets tests and benchmarks ask for port 0 and learn the port
the OS chose (no pick-a-free-port-then-bind race), and lets `serve` print its address only
once the server really accepts connections.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn

__all__ = ["NotifyingServer", "Running", "bind", "port_from_serving_line", "run", "serving_line", "start"]

T = TypeVar("T")
_SERVING_LINE = re.compile(r"^Omnigate on http://(?:\[[^\]]*\]|[^:/]+):(\d+)/graphql\s*$")


def serving_line(host: str, port: int) -> str:
    """What a server prints once it listens: scripts and tests wait for it, and read the port."""
    shown = f"[{host}]" if ":" in host else host
    return f"Omnigate on http://{shown}:{port}/graphql"


def port_from_serving_line(line: str | bytes) -> int | None:
    """The port of a `serving_line`, or None for any other line."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    match = _SERVING_LINE.match(text)
    return int(match.group(1)) if match else None


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the event loop uvicorn itself would pick (uvloop when installed)."""
    with asyncio.Runner(loop_factory=uvicorn.Config(app="unused:app").get_loop_factory()) as runner:
        return runner.run(main)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (port 0: any free port; see `getsockname()`).

    Raises OSError (in use, no such address) or OverflowError (a port beyond 65535).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class NotifyingServer(uvicorn.Server):
    """A uvicorn server whose `ready` event is set once its lifespan started and it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


@dataclass(slots=True, eq=False)
class Running:
    """A server that listens: its port, and the task serving until it is told to stop."""

    server: NotifyingServer
    task: asyncio.Task[None]
    port: int

    async def wait(self) -> None:
        """Until the server shut down (a signal, `stop()`, or a failure)."""
        await self.task

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def start(app: Any, sock: socket.socket, **config: Any) -> Running:
    """Serve `app` on `sock` in this event loop; returns once it listens (else raises why not).

    `config` goes to `uvicorn.Config` (log_level, lifespan, ...).
    """
    server = NotifyingServer(uvicorn.Config(app, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not server.ready.is_set():
        ready.cancel()
        task.result()  # raises why it did not start (uvicorn exits on a failed lifespan)
        raise RuntimeError("the server stopped before it listened")
    return Running(server, task, int(sock.getsockname()[1]))
