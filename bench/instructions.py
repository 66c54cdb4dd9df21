"""Instructions per storefront request, gateway against the hand-written endpoint: a figure noise cannot move.

CPU ms per request (bench/storefront.py) moves by +-10% from run to run on a shared 2-core
machine, more than most single changes save. Instructions executed do not: under valgrind's
callgrind the same code, data and concurrency give the same count to ~0.2%, whatever else the
machine is doing. So this runs each app in process (its ASGI callable, no HTTP, no load
generator), warms it up uninstrumented, and has callgrind count only `--requests` storefront
requests sent by `--clients` concurrent tasks (the aiosqlite threads included). On SQLite by
default; with `--database-url` on PostgreSQL (that database is dropped and seeded again), where
only this process is counted, not the database server: the client side of each statement, which
is where an event dispatched around every read statement hid until it was counted.

    python bench/instructions.py [--requests 160] [--clients 16] [--products 10000]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/omnigate_bench]

It prints millions of instructions per request for each, and their ratio. Instructions are not
time: the gateway runs more distinct code per request, and its time per instruction is higher
(caches), so the CPU-time ratio is lower than this one. Use this figure to tell whether a change
removed work; bench/storefront.py still says where the bar stands.

With `--caches`, callgrind also simulates this machine's caches (L1d, L1i and L2 as the last
level, their sizes read from /sys) and branch predictor, and it prints per request the misses
beside the instructions: the figures that make the gateway's time per instruction higher. The
simulation is deterministic too, but slower (about twice), and its branch predictor is cruder
than a real one's; read its misses as where the footprint grows, not as cycles. Its instruction
counts run ~1% above a plain run's: the slower run changes timing-dependent work (loop turns).
The simulated caches start empty when counting starts (the warm-up runs unsimulated): at most a
cache's worth of misses, under 2% of the L2 figure over 160 requests.

Needs valgrind (Debian's package; on this kind of machine it is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.storefront import BODY, PAGE_SIZE, PYTHON, ROOT, seed

TARGETS = ("handwritten", "gateway")
HEADERS = [(b"content-type", b"application/json"), (b"accept", b"application/json"), (b"host", b"bench")]


def build_app(target: str) -> Any:
    from core.settings import Settings

    settings = Settings.from_env()
    if target == "gateway":
        from gateway.app import create_app

        return create_app(settings)
    from bench.handwritten import create_handwritten_app

    return create_handwritten_app(settings)


async def storefront_request(app: Any) -> None:
    """One POST of the storefront query straight into the ASGI app."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "", "headers": HEADERS,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip
    body_sent = False
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": BODY.encode(), "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [200]:
        raise SystemExit(f"the storefront query answered {status}")


async def _requests(app: Any, count: int, clients: int) -> None:
    async def client(n: int) -> None:
        for _ in range(n):
            await storefront_request(app)

    await asyncio.gather(*(client(count // clients) for _ in range(clients)))


async def _lifespan(app: Any, measure: Any) -> None:
    """Run `measure()` between the app's start-up and shutdown, as a server would."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    if (await outbox.get())["type"] != "lifespan.startup.complete":
        raise SystemExit("the app did not start")
    await measure()
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await task


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not installed (valgrind's package has it: apt-get install valgrind)")
    return path


def _instrument(on: bool) -> None:
    switch = [_tool("callgrind_control"), "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(switch, check=True, capture_output=True)


def run_target(target: str, requests: int, clients: int) -> None:
    """In the process valgrind runs: warm up, then count `requests` requests only."""
    import uvloop

    from gateway.process import tune_gc

    app = build_app(target)

    async def measure() -> None:
        await _requests(app, 200, clients)  # caches, pools and plans warm; uninstrumented
        tune_gc()  # as `serve` does once the app is built
        _instrument(True)
        await _requests(app, requests, clients)
        _instrument(False)

    uvloop.run(_lifespan(app, measure))  # the event loop `serve` runs on


# callgrind's event columns, summed into the figures printed with --caches
EVENTS = {
    "instructions": ("Ir",),
    "L1i misses": ("I1mr",),
    "L1d misses": ("D1mr", "D1mw"),
    "L2 misses": ("ILmr", "DLmr", "DLmw"),
    "branch misses": ("Bcm", "Bim"),
}


_SIMULATED = {("1", "Data"): "D1", ("1", "Instruction"): "I1", ("2", "Unified"): "LL"}  # valgrind's names


def cache_options() -> list[str]:
    """valgrind's cache geometry from /sys (L1d, L1i, L2 as its last level); valgrind's own guess for
    any cache /sys does not describe fully or valgrind cannot model (a set count not a power of two)."""
    caches: dict[str, str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            name = _SIMULATED.get((_read(index, "level"), _read(index, "type")))
            if name is None:
                continue
            size = int(_read(index, "size").rstrip("K")) * 1024
            ways, line = int(_read(index, "ways_of_associativity")), int(_read(index, "coherency_line_size"))
        except (OSError, ValueError):
            continue
        sets = size // (ways * line) if ways and line else 0
        if sets and sets & (sets - 1) == 0:
            caches[name] = f"--{name}={size},{ways},{line}"
    return ["--cache-sim=yes", "--branch-sim=yes", *caches.values()]


def _read(index: Path, name: str) -> str:
    return (index / name).read_text().strip()


def count(target: str, env: dict[str, str], requests: int, clients: int, caches: bool = False) -> dict[str, float]:
    """Per request, for one target: instructions (and with `caches` the EVENTS' other figures)."""
    with tempfile.TemporaryDirectory(prefix="omnigate-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [_tool("valgrind"), "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        command += cache_options() if caches else []
        command += [PYTHON, __file__, "--run", target, "--requests", str(requests), "--clients", str(clients)]
        ran = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if ran.returncode != 0:
            raise SystemExit(f"valgrind failed on {target}:\n{ran.stderr[-2000:]}")
        by_event = _totals(out.read_text())
    figures = EVENTS if caches else {"instructions": EVENTS["instructions"]}
    missing = {event for events in figures.values() for event in events} - by_event.keys()
    if missing:
        raise SystemExit(f"callgrind counted no {' '.join(sorted(missing))}")
    return {figure: sum(by_event[event] for event in events) / requests for figure, events in figures.items()}


def _totals(callgrind_out: str) -> dict[str, int]:
    """Each event's total, from the `events:` and `totals:` lines of callgrind's output file."""
    events = re.search(r"^events:(.*)$", callgrind_out, re.MULTILINE)
    totals = re.search(r"^totals:(.*)$", callgrind_out, re.MULTILINE)
    if events is None or totals is None:
        raise SystemExit("callgrind wrote no events or totals")
    names, values = events.group(1).split(), [int(value) for value in totals.group(1).split()]
    return dict(zip(names, values + [0] * (len(names) - len(values)), strict=True))  # trailing zeros may be left out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=160, help="requests counted per target")
    parser.add_argument("--clients", type=int, default=16, help="concurrent requests")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--database-url", help="a PostgreSQL database of the benchmark's own (dropped, seeded)")
    parser.add_argument("--caches", action="store_true", help="also simulate caches and branches (misses per request)")
    parser.add_argument("--run", choices=TARGETS, help=argparse.SUPPRESS)  # inside valgrind
    args = parser.parse_args()
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url names a PostgreSQL database (SQLite is the default)")
    if args.run:
        run_target(args.run, args.requests, args.clients)
        return
    _tool("valgrind")
    with tempfile.TemporaryDirectory(prefix="omnigate-bench-") as workdir:
        env = {
            **os.environ,
            "OMNIGATE_DATABASE_URL": args.database_url or f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}",
            "OMNIGATE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "",  # imports from .pyc: start-up under valgrind takes seconds, not minutes
            # under valgrind every request outlives the admission limit's lend time (gateway/admission.py),
            # so the limit would only add its timers: both apps run unlimited here
            "OMNIGATE_MAX_CONCURRENT_REQUESTS": "0",
        }
        seed(env, args.products)
        counts = {target: count(target, env, args.requests, args.clients, args.caches) for target in TARGETS}
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"storefront query on {backend}, first: {PAGE_SIZE}, {args.clients} concurrent, {args.requests} counted")
    for target, figures in counts.items():
        print(f"{target:12s} {figures['instructions'] / 1e6:7.2f} M instructions per request")
    ratio = counts["handwritten"]["instructions"] / counts["gateway"]["instructions"]
    print(f"handwritten/gateway: {ratio:.3f} (instructions; the CPU-time ratio is lower, see the docstring)")
    for figure in list(EVENTS)[1:] if args.caches else []:
        hand, gateway = counts["handwritten"][figure], counts["gateway"][figure]
        shown = f"handwritten {hand / 1e3:7.1f} K, gateway {gateway / 1e3:7.1f} K ({gateway / hand:.2f}x)"
        print(f"{figure:14s} per request: {shown}")


if __name__ == "__main__":
    main()
