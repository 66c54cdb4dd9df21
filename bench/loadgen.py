"""A small HTTP/1.1 load generator, used when `wrk` is not installed.

N keep-alive connections each POST the same body in a loop for a fixed time; it prints one
JSON line: requests, seconds, non-2xx count, latency percentiles in milliseconds and every
latency in microseconds with its count (slices of a run are pooled from these). Plain
asyncio streams (no HTTP client library) keep its own cost low; run it on its own core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

__all__ = ["run"]


def _request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(host: str, port: int, request: bytes, deadline: float, latencies: list[float]) -> int:
    """One connection's loop; returns how many answers were not 2xx."""
    reader, writer = await asyncio.open_connection(host, port)
    failures = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.split(b" ")[1].startswith(b"2"):
                failures += 1
    finally:
        writer.close()
    return failures


async def run(url: str, body: bytes, clients: int, duration: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = _request_bytes(host, port, parts.path or "/", body)
    latencies: list[float] = []
    started = time.perf_counter()
    failures = await asyncio.gather(
        *(_client(host, port, request, started + duration, latencies) for _ in range(clients))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "non2xx": sum(failures),
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "latency_us": sorted(Counter(round(latency * 1e6) for latency in latencies).items()),  # as wrk's
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="the JSON body to POST")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.body.encode(), args.clients, args.duration))))


if __name__ == "__main__":
    main()
