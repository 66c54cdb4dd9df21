"""The gateway and the hand-written endpoint under load at the same time: a CPU ratio the host's speed cannot move.

storefront.py alternates the servers slice by slice. On a shared machine the host's speed changes
from one slice to the next, so one run's CPU ratio moves by +-0.05 (bench/README.md, thirteenth
session). Here every server runs on core 0 at once, each driven by its own load generator on
core 1 for the same seconds: whatever the host does, it does to all of them, and each round's
ratio is a paired measurement (rounds of one run agree to about +-0.01).

Sharing one core, each server's caches are also disturbed by the others' work, which costs the
one with the larger footprint (the gateway) more than alternating slices do: read the ratio as a
lower bound of storefront.py's, and the comparison of two versions of the gateway as exact.

`--variant DIR` runs a third server: the gateway from another checkout of the code (a git
worktree holding a change), so a change is measured against main in the same seconds. Every
server runs with `PYTHONHASHSEED=0` unless the variable is set: two processes of the same code
with random seeds (dicts and sets laid out differently) differed by 4% in CPU per request, with
the same seed by about 1% (their order). Run once with the same code in both checkouts first.

    git worktree add /tmp/variant HEAD      # then change the code there
    python bench/sidebyside.py [--seconds 10] [--rounds 5] [--clients 16] [--variant /tmp/variant]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/omnigate_bench]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.storefront import (
    GATEWAY,
    HANDWRITTEN,
    PYTHON,
    Target,
    cpu_seconds,
    load_command,
    load_result,
    same_answer,
    seed,
    server_env,
    start,
    stop_all,
)

PACKAGES = ("core", "gateway", "schema", "commerce", "vault", "policies")  # pyproject.toml's


def round_of_load(targets: list[Target], clients: int, seconds: float, workdir: Path) -> dict[str, float]:
    """Every target loaded for the same seconds; each one's CPU milliseconds per request."""
    use_wrk = shutil.which("wrk") is not None
    before = {t.name: cpu_seconds(_pid(t)) for t in targets}
    runs: list[subprocess.Popen[str]] = []
    try:
        for t in targets:
            command = load_command(t.url, clients, seconds, use_wrk, workdir / t.name)
            runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        outputs = [run.communicate(timeout=seconds + 60)[0] for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    cpu_ms = {}
    for target, output in zip(targets, outputs, strict=True):
        requests = load_result(output)["requests"]
        if not requests:
            raise SystemExit(f"{target.name} answered no request in {seconds:g} s")
        cpu_ms[target.name] = 1000 * (cpu_seconds(_pid(target)) - before[target.name]) / requests
    return cpu_ms


def variant_target(checkout: Path) -> Target:
    """The gateway of another checkout. `-P` keeps the working directory (this checkout) off
    `sys.path`, so its packages come from `checkout`; the working directory stays this one, so
    the relative paths in the settings (the key file, ./var) are the main gateway's. A package
    missing there would be taken from the venv's editable install, i.e. from this checkout:
    refused instead."""
    checkout = checkout.resolve()
    missing = [name for name in PACKAGES if not (checkout / name / "__init__.py").is_file()]
    if missing:
        raise SystemExit(f"{checkout} is not a checkout of the project (no {', '.join(missing)})")
    command = [PYTHON, "-P", "-m", "gateway", "serve", "--port", "0"]
    return Target("variant", command, {"PYTHONPATH": str(checkout)})


def _pid(target: Target) -> int:
    assert target.process is not None
    return target.process.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per round (default 10)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of each server")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--variant", type=Path, help="another checkout of the code: its gateway runs as a third server")
    parser.add_argument("--database-url", default="", help="a PostgreSQL database of the benchmark's own (dropped)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="omnigate-sidebyside-"))
    env = server_env(args.database_url, workdir)
    env.setdefault("PYTHONHASHSEED", "0")  # one layout of dicts and sets for every server
    targets = [Target("handwritten", HANDWRITTEN, {}), Target("gateway", GATEWAY, {})]
    if args.variant:
        targets.append(variant_target(args.variant))
    try:
        seed(env, args.products)
        for target in targets:
            start(target, env)
            (workdir / target.name).mkdir()
        print(f"same JSON from every server: {same_answer(targets)}")
        round_of_load(targets, args.clients, 3, workdir)  # warm-up
        rounds = []
        for n in range(1, args.rounds + 1):
            cpu = round_of_load(targets, args.clients, args.seconds, workdir)
            rounds.append(cpu)
            shown = "  ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
            line = f"round {n}: CPU ms/request {shown}; ratio {cpu['handwritten'] / cpu['gateway']:.3f}"
            if args.variant:
                line += f", variant/gateway CPU {cpu['variant'] / cpu['gateway']:.3f}"
            print(line)
        ratios = [r["handwritten"] / r["gateway"] for r in rounds]
        print(f"CPU ratio handwritten/gateway at {args.clients} clients, side by side: median {median(ratios):.3f}")
        if args.variant:
            changes = [r["variant"] / r["gateway"] for r in rounds]
            print(f"variant/gateway CPU per request: median {median(changes):.3f}")
    finally:
        stop_all(targets, workdir)


if __name__ == "__main__":
    main()
