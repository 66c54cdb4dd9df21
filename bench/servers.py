"""Servers the benchmarks start: on port 0, ready when they print the line that names their port.

No port is picked beforehand (another process could take it first) and nothing polls: the
server binds, listens, and only then prints `Omnigate on http://host:port/graphql`.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.serving import port_from_serving_line  # noqa: E402 - after the path: run as a script

__all__ = ["ROOT", "start_server"]


def start_server(
    command: Sequence[str], env: Mapping[str, str], *, timeout: float = 60.0, new_session: bool = False
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `command` (a server told to listen on port 0) and return it with the port it printed."""
    process = subprocess.Popen(
        list(command), env=dict(env), cwd=ROOT, stdout=subprocess.PIPE, start_new_session=new_session
    )
    assert process.stdout is not None
    stdout = process.stdout
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(remaining):
                continue
            line = stdout.readline()
            if not line:
                process.wait()
                raise SystemExit(f"{command[0]} ... exited with {process.returncode} before serving")
            port = port_from_serving_line(line)
            if port is not None:
                # keep reading what it prints, so a full pipe never blocks the server
                threading.Thread(target=stdout.read, daemon=True).start()
                return process, port
    process.kill()
    raise SystemExit(f"{' '.join(command)} did not start serving within {timeout:g} s")
