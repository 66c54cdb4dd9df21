"""Storefront benchmark: the gateway against a hand-written endpoint running the same SQL.

Seeds a temporary SQLite database (`python -m gateway seed --products N`), starts the gateway
(one uvicorn worker) and `bench/handwritten.py` pinned to core 0, checks once that both answer
the storefront query with the same JSON, then drives each for a fixed time at 1 and 16
concurrent clients from core 1 (wrk, or `bench/loadgen.py` when wrk is missing) and prints
requests/s, p50, p99 and server CPU per request, and the gateway's throughput as a fraction
of the hand-written one. Each point is split into `--rounds` slices that alternate between the
servers, so a neighbour's load on a shared machine hits both alike.

    python bench/storefront.py [--duration 10] [--rounds 2] [--clients 1,16] [--interpreted]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/omnigate_bench]

The bar (issue 12): CPU ratio >= 0.8 at 16 clients, p99 < 10 ms at 1 client. Every server it starts is
killed when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import ROOT, start_server

PYTHON = sys.executable
PAGE_SIZE = 24
# the servers compared, each told to listen on port 0
HANDWRITTEN = [PYTHON, str(ROOT / "bench" / "handwritten.py"), "--port", "0"]
GATEWAY = [PYTHON, "-m", "gateway", "serve", "--port", "0"]

QUERY = """query Storefront($first: Int!) {
  products(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id slug name category { slug name }
      variants { id sku name price { amount currency } quantityAvailable } } }
  }
}"""
BODY = json.dumps({"query": QUERY, "variables": {"first": PAGE_SIZE}, "operationName": "Storefront"})

WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = [==[%s]==]
function done(summary, latency, requests)
  local e = summary.errors
  -- latency(i): the i-th distinct latency recorded (microseconds, ascending) and how many had it
  local histogram, i = {}, 1
  while true do
    local value, count = latency(i)
    if not value or value == 0 then break end
    histogram[i] = string.format("[%%d, %%d]", value, count)
    i = i + 1
  end
  io.write(string.format('BENCH_RESULT {"requests": %%d, "seconds": %%f, "non2xx": %%d, '
    .. '"p50_ms": %%f, "p99_ms": %%f, "latency_us": [%%s]}\\n',
    summary.requests, summary.duration / 1e6, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(histogram, ", ")))
end
"""


@dataclass
class Target:
    """One server under test: its name, command line (told to listen on port 0) and extra environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int = 0  # the one it printed once listening
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"


def pinned(core: int, command: list[str]) -> list[str]:
    """`command` on one core, when taskset exists (it does on Debian: util-linux)."""
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def seed(env: dict[str, str], products: int) -> None:
    started = time.perf_counter()
    url = env["OMNIGATE_DATABASE_URL"]
    if url.startswith("postgresql"):
        recreate_postgres_database(url)
    subprocess.run(
        [PYTHON, "-m", "gateway", "seed", "--products", str(products)],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    analyze(url)  # the planner's statistics after a bulk load, as any operator would
    print(f"seeded {products} products in {time.perf_counter() - started:.1f}s")


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def recreate_postgres_database(url: str) -> None:
    """A fresh database of the URL's name (dropped first: the benchmark owns it)."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"name the benchmark's own database in --database-url (letters, digits, _), not {name!r}")

    async def recreate() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(recreate())
    subprocess.run(
        [PYTHON, "-m", "gateway", "migrate"],
        env={**os.environ, "OMNIGATE_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def analyze(url: str) -> None:
    if url.startswith("postgresql"):
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(_asyncpg_dsn(url))
            try:
                await conn.execute("ANALYZE")
            finally:
                await conn.close()

        asyncio.run(run())
    else:
        import sqlite3

        connection = sqlite3.connect(url.split(":///", 1)[1])
        connection.execute("ANALYZE")
        connection.close()


def post(url: str, body: str = BODY, timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json", "Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def start(target: Target, base_env: dict[str, str]) -> None:
    """Start the server on core 0; it is ready once it printed the port it listens on."""
    target.process, target.port = start_server(pinned(0, target.command), {**base_env, **target.env}, new_session=True)


def server_env(database_url: str, workdir: Path) -> dict[str, str]:
    """The servers' environment: the database (a temporary SQLite file in `workdir` unless a URL
    is given), quiet logs, the project on the path."""
    return {
        **os.environ,
        "OMNIGATE_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "OMNIGATE_LOG_LEVEL": "WARNING",
        "OMNIGATE_HOST": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    }


def stop_all(targets: list[Target], workdir: Path) -> None:
    """Every server killed and the temporary files gone, however the run ended."""
    for target in targets:
        stop(target)
    shutil.rmtree(workdir, ignore_errors=True)


def stop(target: Target) -> None:
    """Kill the server's whole process group (taskset execs it, so the group is the server)."""
    process = target.process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def load(url: str, clients: int, duration: float, use_wrk: bool, workdir: Path) -> dict[str, Any]:
    """Drive `url` from core 1 for `duration` seconds; the load generator's one JSON line."""
    command = load_command(url, clients, duration, use_wrk, workdir)
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    return load_result(output)


def load_command(url: str, clients: int, duration: float, use_wrk: bool, workdir: Path) -> list[str]:
    """The load generator's command line, pinned to core 1."""
    if use_wrk:
        script = workdir / "storefront.lua"
        script.write_text(WRK_SCRIPT % BODY)
        seconds = max(1, round(duration))  # wrk takes whole seconds only ("2.5s" is a usage error)
        command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    else:
        loadgen = str(ROOT / "bench" / "loadgen.py")
        command = [PYTHON, loadgen, url, "--body", BODY, "--clients", str(clients), "--duration", str(duration)]
    return pinned(1, command)


def load_result(output: str) -> dict[str, Any]:
    """The load generator's JSON line, with requests per second added."""
    line = next(line for line in output.splitlines() if line.startswith(("BENCH_RESULT", "{")))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(target: Target, clients: int, duration: float, use_wrk: bool, workdir: Path) -> dict[str, Any]:
    """One slice of load on `target`, with the server's CPU time spent meanwhile."""
    assert target.process is not None
    before = cpu_seconds(target.process.pid)
    result = load(target.url, clients, duration, use_wrk, workdir)
    result["cpu"] = cpu_seconds(target.process.pid) - before
    return result


def combine(slices: list[dict[str, Any]]) -> dict[str, float]:
    """Rounds of one point as one: totals, and p50 and p99 of every request of every slice (their
    latencies pooled), beside the worst slice's own p99 (what one unlucky slice saw)."""
    requests = sum(r["requests"] for r in slices)
    seconds = sum(r["seconds"] for r in slices)
    pooled = pool_latencies(r["latency_us"] for r in slices)
    return {
        "requests": requests,
        "rps": requests / seconds if seconds else 0.0,
        "p50_ms": percentile_ms(pooled, 50),
        "p99_ms": percentile_ms(pooled, 99),
        "worst_slice_p99_ms": max(r["p99_ms"] for r in slices),
        "non2xx": sum(r["non2xx"] for r in slices),
        "cpu_ms": 1000 * sum(r["cpu"] for r in slices) / requests if requests else 0.0,
    }


def pool_latencies(histograms: Iterable[list[list[int]]]) -> list[tuple[int, int]]:
    """Histograms of `[microseconds, count]` pairs, as the load generators print them, as one (ascending)."""
    counts: Counter[int] = Counter()
    for histogram in histograms:
        for value, count in histogram:
            counts[value] += count
    return sorted(counts.items())


def percentile_ms(histogram: list[tuple[int, int]], p: int) -> float:
    """The latency (ms) `p` percent of the requests took at most, ranked as wrk ranks its own."""
    total = sum(count for _, count in histogram)
    rank = p * total // 100 + 1  # wrk's C round(p/100 * total + 0.5), in integers
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value / 1000
    return histogram[-1][0] / 1000 if histogram else 0.0


def print_round_ratios(slices: dict[tuple[str, int], list[dict[str, Any]]], client_counts: list[int]) -> None:
    """The CPU ratio of each round's slices alone: minutes apart a neighbour's load differs, within one
    round both servers met the same, so the spread of these says how far one run can be trusted."""
    for clients in client_counts:
        pairs = zip(slices[("handwritten", clients)], slices[("gateway", clients)], strict=True)
        measured = [(h, g) for h, g in pairs if h["requests"] and g["requests"] and g["cpu"]]
        ratios = sorted((h["cpu"] / h["requests"]) / (g["cpu"] / g["requests"]) for h, g in measured)
        if len(ratios) > 1:
            listed = ", ".join(f"{r:.2f}" for r in ratios)
            point = f"{clients} client{'s' if clients > 1 else ''}"
            print(f"CPU ratio per round at {point}: {listed} (median {median(ratios):.2f})")


def same_answer(targets: list[Target]) -> bool:
    answers = [post(t.url) for t in targets]
    for target, answer in zip(targets, answers, strict=True):
        if answer.get("errors") or not answer.get("data"):
            print(f"{target.name} answered with errors: {json.dumps(answer)[:300]}")
            return False
    return all(answer == answers[0] for answer in answers)


def report(results: dict[tuple[str, int], dict[str, float]], client_counts: list[int], names: list[str]) -> None:
    print(f"\n{'target':<22}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}{'non-2xx':>9}")
    for name in names:
        for clients in client_counts:
            r = results[(name, clients)]
            print(
                f"{name:<22}{clients:>8}{r['rps']:>9.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['cpu_ms']:>12.2f}"
                f"{r['non2xx']:>9}"
            )
    print()
    for name in names:
        if name == "handwritten":
            continue
        ratios = ", ".join(
            f"{c} client{'s' if c > 1 else ''}: {results[(name, c)]['rps'] / results[('handwritten', c)]['rps']:.2f}"
            f" (CPU {results[('handwritten', c)]['cpu_ms'] / results[(name, c)]['cpu_ms']:.2f})"
            for c in client_counts
        )
        print(f"throughput {name}/handwritten: {ratios}")
    gateway = "gateway"
    most = max(client_counts)
    ratio = results[(gateway, most)]["rps"] / results[("handwritten", most)]["rps"]
    cpu_ratio = results[("handwritten", most)]["cpu_ms"] / results[(gateway, most)]["cpu_ms"]
    one = results.get((gateway, 1))  # the p99 bar is at one client
    print(
        f"bar: at {most} clients throughput ratio {ratio:.2f}, CPU ratio {cpu_ratio:.2f} "
        f"(>= 0.8: {'PASS' if cpu_ratio >= 0.8 else 'FAIL'}), "
        + (
            "p99 at 1 client not measured (add 1 to --clients)"
            if one is None
            else f"p99 at 1 client {one['p99_ms']:.1f} ms (< 10 ms: {'PASS' if one['p99_ms'] < 10 else 'FAIL'}; "
            f"the worst slice's own {one['worst_slice_p99_ms']:.1f} ms)"
        )
    )
    if ("gateway-unlimited", most) in results:
        hw, gw = results[("handwritten-unlimited", most)], results[("gateway-unlimited", most)]
        unlimited = hw["cpu_ms"] / gw["cpu_ms"]
        print(f"with no admission limit on either server: CPU ratio at {most} clients {unlimited:.2f}")
    if ("gateway-cached", most) in results:
        cached = results[("gateway-cached", most)]["rps"] / results[("handwritten", most)]["rps"]
        print(
            f"bar: cached anonymous query at {most} clients {cached:.1f}x the hand-written endpoint's uncached "
            f"throughput (>= 5x: {'PASS' if cached >= 5 else 'FAIL'})"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured point (default 10)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="split each point into this many slices, alternating the servers (fair under drift)",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per server first")
    parser.add_argument("--clients", default="1,16", help="concurrent clients per point, comma-separated")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument(
        "--interpreted",
        action="store_true",
        help="also measure the gateway with OMNIGATE_COMPILED_QUERIES=false (graphql-core only)",
    )
    parser.add_argument(
        "--unlimited",
        action="store_true",
        help="also measure both servers with OMNIGATE_MAX_CONCURRENT_REQUESTS=0 (no admission limit)",
    )
    parser.add_argument("--python-loadgen", action="store_true", help="use bench/loadgen.py even if wrk is installed")
    parser.add_argument(
        "--database-url",
        default="",
        help="run on this database instead of a temporary SQLite file, e.g. "
        "postgresql+asyncpg://postgres@127.0.0.1:5432/omnigate_bench (dropped and re-created)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` still kills the servers
    client_counts = [int(c) for c in args.clients.split(",")]
    use_wrk = shutil.which("wrk") is not None and not args.python_loadgen
    if not use_wrk and not args.python_loadgen:
        print("wrk is not installed (apt-get update && apt-get install -y wrk): using bench/loadgen.py instead")
    workdir = Path(tempfile.mkdtemp(prefix="omnigate-bench-"))
    env = server_env(args.database_url, workdir)
    targets = [
        Target("handwritten", HANDWRITTEN, {}),
        Target("gateway", GATEWAY, {}),
        Target("rawdriver", [PYTHON, str(ROOT / "bench" / "rawdriver.py"), "--port", "0"], {}),
        # the same gateway with its response cache on: the anonymous query answered from memory
        Target("gateway-cached", GATEWAY, {"OMNIGATE_RESPONSE_CACHE": "true"}),
    ]
    if args.interpreted:
        targets.append(Target("gateway-interpreted", GATEWAY, {"OMNIGATE_COMPILED_QUERIES": "false"}))
    if args.unlimited:
        unlimited = {"OMNIGATE_MAX_CONCURRENT_REQUESTS": "0"}
        targets += [
            Target("handwritten-unlimited", targets[0].command, unlimited),
            Target("gateway-unlimited", targets[1].command, unlimited),
        ]
    try:
        seed(env, args.products)
        for target in targets:
            start(target, env)
        print(f"same JSON from every server: {same_answer(targets)}")
        print(
            f"load generator: {'wrk' if use_wrk else 'bench/loadgen.py'}, {args.duration:g}s per point "
            f"in {args.rounds} alternating slices"
        )
        for target in targets:
            if args.warmup > 0:
                load(target.url, max(client_counts), args.warmup, use_wrk, workdir)
        slices: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for clients in client_counts:
            for _ in range(args.rounds):
                for target in targets:
                    result = measure(target, clients, args.duration / args.rounds, use_wrk, workdir)
                    slices.setdefault((target.name, clients), []).append(result)
        report({key: combine(parts) for key, parts in slices.items()}, client_counts, [t.name for t in targets])
        print_round_ratios(slices, client_counts)
    finally:
        stop_all(targets, workdir)


if __name__ == "__main__":
    main()
