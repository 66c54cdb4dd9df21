"""Commands for the warehouse and ERP side: `events relay|status|retry-dead`, `stock import`."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import httpx

from commerce.events.admin import backlog, prune, retry_dead
from commerce.events.relay import Relay, RelayOptions
from commerce.events.sinks import Sink, StdoutSink, WebhookSink
from commerce.events.webhooks import load_endpoints
from commerce.inventory.errors import InventoryErrorCode
from commerce.inventory.sync import MAX_COUNTS_PER_SYNC, StockCount, sync_counts
from core.clock import SystemClock
from core.db import create_engine
from core.settings import Settings

__all__ = ["CSV_COLUMNS", "event_status", "import_stock", "prune_events", "relay_events", "retry_dead_letters"]

CSV_COLUMNS = ("sku", "location_code", "on_hand")


async def relay_events(settings: Settings, *, once: bool, stdout: bool, out: TextIO | None = None) -> int:
    """Deliver outbox events until stopped (SIGINT/SIGTERM), or until nothing is due (`once`)."""
    out = out or sys.stdout
    if not stdout and not settings.webhooks_file:
        print("no endpoints: set OMNIGATE_WEBHOOKS_FILE, or use --stdout", file=sys.stderr)
        return 2
    endpoints = [] if stdout else load_endpoints(settings.webhooks_file)
    options = RelayOptions.of(settings)
    clock = SystemClock()
    engine = create_engine(settings.database_url)
    try:
        async with httpx.AsyncClient(timeout=options.timeout_seconds, follow_redirects=False) as client:
            sinks: list[Sink] = [StdoutSink(out)] if stdout else [WebhookSink(e, client, clock) for e in endpoints]
            relay = Relay(engine, sinks, options, clock)
            if once:
                report = await relay.drain()
            else:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, stop.set)
                report = await relay.run(stop)
    finally:
        await engine.dispose()
    print(
        f"delivered {report.delivered}, to retry {report.retried}, dead-lettered {report.dead}",
        file=sys.stderr if stdout else out,
    )
    return 0


async def event_status(settings: Settings, out: TextIO | None = None) -> int:
    """Undelivered deliveries per endpoint: pending (in line or waiting to retry) and dead."""
    out = out or sys.stdout
    engine = create_engine(settings.database_url)
    try:
        counts = await backlog(engine)
    finally:
        await engine.dispose()
    for endpoint, statuses in sorted(counts.items()):
        print(f"{endpoint}: pending {statuses.get('pending', 0)}, dead {statuses.get('dead', 0)}", file=out)
    if not counts:
        print("no undelivered events", file=out)
    return 0


async def retry_dead_letters(settings: Settings, endpoint: str | None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    engine = create_engine(settings.database_url)
    try:
        count = await retry_dead(engine, SystemClock(), endpoint)
    finally:
        await engine.dispose()
    print(f"{count} dead-lettered deliveries are back in line", file=out)
    return 0


async def prune_events(settings: Settings, days: int, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    engine = create_engine(settings.database_url)
    try:
        events, deliveries = await prune(engine, SystemClock().now() - timedelta(days=days))
    finally:
        await engine.dispose()
    print(f"deleted {events} events and {deliveries} deliveries older than {days} days", file=out)
    return 0


def _read_counts(path: Path) -> tuple[list[tuple[int, StockCount]], list[str]]:
    """(CSV line number, count) for each well-formed row, and a message for each other row."""
    counts: list[tuple[int, StockCount]] = []
    problems: list[str] = []
    first_line: dict[tuple[str, str], int] = {}  # (sku, location code) -> the line that counted it
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: the header must name the columns {', '.join(CSV_COLUMNS)} (missing {missing})")
        for row in reader:
            line = reader.line_num
            sku, location, raw = ((row.get(c) or "").strip() for c in CSV_COLUMNS)
            if not sku or not location:
                problems.append(f"line {line}: {InventoryErrorCode.MISSING_VALUE}: sku and location_code are required")
                continue
            try:
                on_hand = int(raw)
            except ValueError:
                problems.append(
                    f"line {line}: {InventoryErrorCode.INVALID_QUANTITY}: on_hand {raw!r} is not a whole number"
                )
                continue
            # the file is sent in chunks: a level counted again in a later chunk is refused here, as
            # stockSync refuses it within one call (the first count applies). A negative count is
            # refused (INVALID_QUANTITY) and so no count: as in stockSync, a later one still applies.
            first = first_line.setdefault((sku, location), line) if on_hand >= 0 else line
            if first != line:
                duplicate = InventoryErrorCode.DUPLICATE_COUNT
                problems.append(f"line {line}: {duplicate}: counted already at line {first}: that count applies")
                continue
            counts.append((line, StockCount(sku=sku, location_code=location, on_hand=on_hand)))
    return counts, problems


async def import_stock(settings: Settings, path: Path, actor: str, out: TextIO | None = None) -> int:
    """Apply a CSV of on-hand counts as `stockSync` does; exit 1 when any line was refused."""
    out = out or sys.stdout
    try:
        counts, problems = _read_counts(path)
    except (OSError, ValueError) as exc:
        print(f"cannot import: {exc}", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    updated = 0
    try:
        for start in range(0, len(counts), MAX_COUNTS_PER_SYNC):
            chunk = counts[start : start + MAX_COUNTS_PER_SYNC]
            result = await sync_counts(engine, [count for _, count in chunk], actor=actor, prefix="rows")
            updated += result.updated
            for problem in result.problems:
                line = chunk[int(problem.field[1])][0] if problem.field and len(problem.field) > 1 else 0
                problems.append(f"line {line}: {problem.code}: {problem}")
    finally:
        await engine.dispose()
    print(f"applied {updated} of {updated + len(problems)} counts; {len(problems)} refused", file=out)
    for message in sorted(problems, key=lambda m: int(m.split(":", 1)[0].removeprefix("line "))):
        print(message, file=out)
    return 1 if problems else 0
