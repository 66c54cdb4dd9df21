"""The DPO's command line: data-subject requests, the retention job, the record of processing,
backups that stay erased.

The person is found by blind index: an email given here is never printed, logged or audited
(`--email -` reads it from standard input, out of the shell's history). Every export and
erasure writes its own audit record (actor: the operator, channel: cli).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.customers import service as customers
from core.broadcast import create_broadcaster
from core.clock import SystemClock
from core.db import create_engine, is_sqlite
from core.migrate import migrate
from core.settings import Settings
from gateway.privacy import ERASED_TOPIC, build_requests, load_retention
from policies.privacy import privacy_policy
from policies.ropa import as_markdown, record_of_processing
from vault.audit import AuditEntry, AuditLog
from vault.keys import load_audit_key
from vault.requests.service import DataSubjectRequests, Request, RetentionIncomplete
from vault.requests.sources import DataSubject, ExpiryRefused
from vault.service import Vault

__all__ = [
    "backup",
    "dsr_erase",
    "dsr_export",
    "dsr_list",
    "dsr_run",
    "progress_bar",
    "replay_erasures",
    "restore",
    "retention_run",
    "ropa",
]


def progress_bar(width: int = 30) -> Callable[[str, int, int], None]:
    """A one-line progress bar on stderr (stdout stays clean for `> person.json`)."""

    def show(step: str, done: int, total: int) -> None:
        out = sys.stderr
        filled = width * done // max(total, 1)
        out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} {step:<24}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show


@dataclass(slots=True)
class _Tools:
    engine: AsyncEngine
    vault: Vault
    requests: DataSubjectRequests
    audit: AuditLog
    operator: str
    run_id: str

    async def audit_access(self, operation: str, fields: str, customer_key: int) -> None:
        await self.audit.append(
            [
                AuditEntry(
                    actor=self.operator,
                    role="dpo",
                    channel="cli",
                    operation=operation,
                    fields=fields,
                    subject=str(customer_key),
                    outcome="allowed",
                    trace_id=self.run_id,
                )
            ]
        )


@asynccontextmanager
async def _tools(settings: Settings, operator: str | None = None) -> AsyncIterator[_Tools]:
    clock = SystemClock()
    engine = create_engine(settings.database_url)
    broadcaster = create_broadcaster(engine)

    async def erased(subject: DataSubject) -> None:  # tell every serving replica (PostgreSQL)
        await broadcaster.publish(ERASED_TOPIC, str(subject.customer_key))

    try:
        vault = Vault.from_settings(settings, engine, clock)
        audit = AuditLog(engine, clock, load_audit_key(settings))
        requests = build_requests(settings, engine, vault, clock, audit)
        requests.on_erased = erased
        yield _Tools(
            engine=engine,
            vault=vault,
            requests=requests,
            audit=audit,
            operator=(operator or f"cli:{getpass.getuser()}")[:100],
            run_id=secrets.token_hex(16),
        )
    finally:
        await engine.dispose()


def _email(value: str) -> str:
    return sys.stdin.readline().strip() if value == "-" else value


async def _find(tools: _Tools, email: str) -> tuple[int, str] | None:
    key = await customers.find_by_email(tools.engine, tools.vault, _email(email))
    if key is None:
        return None
    subject = (await customers.subjects_by_ids(tools.engine, [key])).get(key)
    return (key, subject) if subject is not None else None


async def dsr_export(settings: Settings, email: str, out: TextIO | None = None, operator: str | None = None) -> int:
    out = out or sys.stdout
    async with _tools(settings, operator) as tools:
        found = await _find(tools, email)
        if found is None:
            print("no customer has this email (looked up by blind index)", file=sys.stderr)
            return 1
        key, subject = found
        request = await tools.requests.open("EXPORT", customer_key=key, subject_id=subject, requested_by=tools.operator)
        request = await tools.requests.run(request.id)
        document = await tools.requests.export_document(request)
        await tools.audit_access("cli dsr export", "DataSubjectRequest.export", key)
    json.dump(document, out, ensure_ascii=False, indent=2)
    out.write("\n")
    print(f"request {request.id}: export of customer {key} {request.status.lower()}", file=sys.stderr)
    return 0


async def dsr_erase(settings: Settings, email: str, *, confirm: bool, operator: str | None = None) -> int:
    if not confirm:
        print("erasure cannot be undone: add --confirm", file=sys.stderr)
        return 2
    async with _tools(settings, operator) as tools:
        found = await _find(tools, email)
        if found is None:
            print("no customer has this email (looked up by blind index)", file=sys.stderr)
            return 1
        key, subject = found
        request = await tools.requests.open(
            "ERASURE", customer_key=key, subject_id=subject, requested_by=tools.operator
        )
        await tools.audit_access("cli dsr erase", "DataSubjectRequest.retained", key)
        request = await tools.requests.run(request.id, progress_bar())
    print(f"request {request.id}: customer {key} erased; retained:")
    for r in request.retained:
        print(f"  {r.category}: until {r.until.date().isoformat()} ({r.legal_basis})")
    return 0


def _row(r: Request, now: Any) -> str:
    due = r.due_at.date().isoformat() + (" OVERDUE" if r.overdue(now) else "")
    done = r.completed_at.date().isoformat() if r.completed_at else "-"
    return f"{r.id:>6}  {r.kind:<8} {r.status:<11} {r.customer_key:>10}  {r.received_at.date()}  {due:<18} {done}"


async def dsr_list(settings: Settings, *, overdue: bool, limit: int = 100) -> int:
    async with _tools(settings) as tools:
        found = await tools.requests.recent(limit, overdue=overdue)
        now = tools.requests.ctx.clock.now()
    print(f"{'id':>6}  {'kind':<8} {'status':<11} {'customer':>10}  {'received':<10}  {'due':<18} completed")
    for r in found:
        print(_row(r, now))
    return 0


async def dsr_run(settings: Settings) -> int:
    """Finish every request an interrupted run left PENDING or IN_PROGRESS."""
    async with _tools(settings) as tools:
        ids = await tools.requests.unfinished()
        await tools.requests.run_many(ids, progress_bar())
    print(f"{len(ids)} request(s) finished")
    return 0


async def retention_run(settings: Settings, *, dry_run: bool) -> int:
    """Counts per category; exit 1 when a category refused (e.g. an audit log that does not verify)."""
    refused: tuple[ExpiryRefused, ...] = ()
    async with _tools(settings) as tools:
        try:
            counts = await tools.requests.expire(dry_run=dry_run)
        except RetentionIncomplete as incomplete:
            counts, refused = incomplete.counts, incomplete.refused
    verb = "would delete" if dry_run else "deleted"
    for category, n in sorted(counts.items()):
        print(f"{category}: {verb} {n}")
    for refusal in refused:
        print(f"{refusal.category}: not deleted: {refusal.reason}")
    return 1 if refused else 0


def ropa(settings: Settings, *, as_json: bool, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    record = record_of_processing(load_retention(settings), privacy_policy())
    out.write(json.dumps(record, ensure_ascii=False, indent=2) + "\n" if as_json else as_markdown(record))
    return 0


def _sqlite_path(settings: Settings) -> Path:
    if not is_sqlite(settings.database_url):
        raise SystemExit(
            'PostgreSQL: back up with `pg_dump -Fc -f omnigate.dump "$DATABASE"`, restore with `pg_restore '
            '--clean -d "$DATABASE" omnigate.dump`, then run `python -m gateway restore --replay-only` '
            "before serving (see README)"
        )
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        raise SystemExit("an in-memory database has nothing to back up")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while the gateway keeps serving."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


async def backup(settings: Settings, target: str) -> int:
    source = _sqlite_path(settings)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_copy_sqlite, source, Path(target))
    print(f"backed up to {target}")
    return 0


async def restore(settings: Settings, backup_file: str | None, *, replay_only: bool = False) -> int:
    """Put the backup in place, bring its schema up to date, then erase again everyone the erasure
    ledger names whom the backup still holds: nobody erased comes back."""
    if not replay_only:
        if backup_file is None:
            raise SystemExit("name the backup file (or --replay-only after pg_restore)")
        await asyncio.to_thread(_copy_sqlite, Path(backup_file), _sqlite_path(settings))
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    replayed = await replay_erasures(settings, progress_bar())
    print(f"restored; erased again from the ledger: {replayed}")
    return 0


async def replay_erasures(settings: Settings, progress: Callable[[str, int, int], None] | None = None) -> int:
    """Erase again everyone the erasure ledger names whom the database does not show erased
    (run by `restore`, and by `serve` before it listens). Cheap when there is nothing to do."""
    async with _tools(settings) as tools:
        return await tools.requests.replay_ledger(progress)
