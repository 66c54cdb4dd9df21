"""Python bytecodes per storefront request, gateway against the hand-written endpoint, by package and function.

instructions.py says how much work a request is; this says whose Python it is. Each app runs in
process (bench/instructions.py's ASGI harness, one client, so the count is the same every run),
warms up untraced, then `sys.settrace` with opcode events counts every bytecode the measured
requests execute, in every thread (aiosqlite's workers included), by the function it belongs to.
Both apps run the same SQL through the same commerce functions, so their SQLAlchemy, commerce and
driver counts come out alike; the rest of the gateway's count is the price of GraphQL.

    python bench/bytecodes.py [--requests 4] [--top 25] [--products 10000]

A bytecode is not a fixed cost (a call or an allocation is many instructions, a jump a few), but
the count is exact, and a function that runs a tenth fewer bytecodes runs about a tenth less Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.instructions import TARGETS, _lifespan, _requests, build_app, storefront_request
from bench.storefront import PAGE_SIZE, ROOT, seed

Counts = Counter[tuple[str, int, str]]  # (file, first line, qualified name) -> bytecodes


def count_bytecodes(target: str, requests: int) -> Counts:
    """Bytecodes run by `requests` storefront requests of `target`, by function."""
    import uvloop

    app = build_app(target)
    counts: Counts = Counter()

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        if event == "opcode":
            code = frame.f_code
            counts[(code.co_filename, code.co_firstlineno, code.co_qualname)] += 1
        return trace

    async def measure() -> None:
        await _requests(app, 200, 1)  # caches, pools and plans warm; untraced
        threading.settrace(trace)
        sys.settrace(trace)
        try:
            for _ in range(requests):
                await storefront_request(app)
        finally:
            sys.settrace(None)
            threading.settrace(None)

    uvloop.run(_lifespan(app, measure))
    return counts


def _where(filename: str) -> str:
    """A short name for a code object's file: the project path, or the installed package."""
    path = Path(filename)
    if path.is_relative_to(ROOT) and ".venv" not in path.parts:
        return str(path.relative_to(ROOT))
    parts = path.parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    if not path.is_absolute():
        return filename  # generated code: "<compiled plan: complete>", a dataclass's "<string>"
    return f"{path.parent.name}/{path.name}" if path.name == "__init__.py" else path.name  # the stdlib


def package_of(filename: str) -> str:
    """The group a function counts under: a project package's module (schema/compiled) or a library."""
    where = _where(filename)
    parts = where.split("/")
    if parts[0] in {"schema", "gateway", "commerce", "core", "vault", "policies", "bench"}:
        return "/".join(parts[:2]).removesuffix(".py")
    return parts[0].removesuffix(".py")


def report(counts: Counts, requests: int, top: int) -> list[str]:
    total = sum(counts.values()) / requests
    packages: Counter[str] = Counter()
    for (filename, _, _), n in counts.items():
        packages[package_of(filename)] += n
    lines = [f"  {total:9.0f} bytecodes per request"]
    lines += [f"  {n / requests:9.0f}  {name}" for name, n in packages.most_common(top)]
    lines.append("  busiest functions:")
    lines += [
        f"  {n / requests:9.0f}  {_where(filename)}:{line} {name}"
        for (filename, line, name), n in counts.most_common(top)
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4, help="requests counted per target")
    parser.add_argument("--top", type=int, default=25, help="packages and functions listed")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--run", choices=TARGETS, help=argparse.SUPPRESS)  # one target, in this process
    args = parser.parse_args()
    if args.run:
        counts = count_bytecodes(args.run, args.requests)
        print(f"{args.run}:", *report(counts, args.requests, args.top), sep="\n")
        return
    with tempfile.TemporaryDirectory(prefix="omnigate-bench-") as workdir:
        env = {
            **os.environ,
            "OMNIGATE_DATABASE_URL": f"sqlite+aiosqlite:///{Path(workdir) / 'bench.db'}",
            "OMNIGATE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        seed(env, args.products)
        print(f"storefront query, first: {PAGE_SIZE}, one client, {args.requests} requests counted")
        for target in TARGETS:  # each in a process of its own: one app's imports and caches never help the other
            command = [sys.executable, __file__, "--run", target, "--requests", str(args.requests)]
            command += ["--top", str(args.top)]
            subprocess.run(command, env=env, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
