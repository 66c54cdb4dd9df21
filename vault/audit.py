"""The audit trail: who read or changed whose data, append-only and chained by a keyed hash.

Each record's hash is an HMAC-SHA256, under the audit key (held like the KEK, never in the
database), of its content, its sequence number and the previous record's hash. Changing,
removing or reordering any record therefore breaks the chain from there on, and whoever can
write the database but lacks the key cannot compute a chain that holds again. Cutting the
tail leaves a shorter chain that holds: the signed checkpoints the gateway writes outside the
database (`vault.audit_checkpoints`) show what the log had reached. `verify_chain` names the
first record that does not hold. Records carry keys only, never PII.

The retention job deletes the oldest records (`AuditLog.prune`) under a cut: a checkpoint of the
chain at the last deleted record, signed with the audit key and kept in `audit_log_cuts`. The
rest verifies from the latest cut, and the database lets a record be deleted only below one.

Appends are serialized by the database, so several gateway processes stay correct: the
sequence number is the primary key (a writer that raced on the same head is refused and
retries on the new head), on PostgreSQL a transaction-scoped advisory lock queues the
writers first, and on SQLite `BEGIN IMMEDIATE` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import Clock
from core.db import is_sqlite, writer
from vault.audit_models import AuditCut, AuditRecord

__all__ = [
    "GENESIS",
    "Access",
    "AuditAppendFailed",
    "AuditEntry",
    "AuditLog",
    "AuditPruneRefused",
    "ChainReport",
    "Checkpoint",
    "accesses_to",
    "cut_signature",
    "head",
    "plain_hash",
    "rechain",
    "record_hash",
    "verify_chain",
]

GENESIS = "0" * 64
_ADVISORY_LOCK = 0x0A0D17  # pg_advisory_xact_lock key for audit appends
_ATTEMPTS = 20
_table = AuditRecord.__table__
_cuts = AuditCut.__table__


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One access to be recorded: `subject` is a customer's key, `fields` like 'Customer.email'."""

    actor: str
    role: str
    channel: str
    operation: str
    fields: str
    subject: str
    outcome: str  # "allowed" | "denied"
    trace_id: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the chain as the gateway saw it: the log had reached record `seq`, with `hash`."""

    seq: int
    hash: str
    at: datetime


def record_hash(
    key: bytes, seq: int, recorded_at: datetime, entry: AuditEntry | AuditRecord | Row[Any], prev_hash: str
) -> str:
    """HMAC-SHA256 (under the audit key) of a canonical JSON of the record's content and the previous record's hash."""
    return hmac.new(key, _content(seq, recorded_at, entry, prev_hash), hashlib.sha256).hexdigest()


def plain_hash(seq: int, recorded_at: datetime, entry: AuditEntry | AuditRecord | Row[Any], prev_hash: str) -> str:
    """The unkeyed SHA-256 the chain used before it was keyed (migration 0006): only to say so."""
    return hashlib.sha256(_content(seq, recorded_at, entry, prev_hash)).hexdigest()


def _content(seq: int, recorded_at: datetime, entry: AuditEntry | AuditRecord | Row[Any], prev_hash: str) -> bytes:
    content = [
        seq,
        recorded_at.isoformat(timespec="microseconds"),
        entry.actor,
        entry.role,
        entry.channel,
        entry.operation,
        entry.fields,
        _subject_of(entry),
        entry.outcome,
        entry.trace_id,
        prev_hash,
    ]
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _subject_of(entry: Any) -> str:
    """The record's subject (stored in the column `customer_key`, keyed `subject` in code)."""
    return str(entry.subject)


class AuditAppendFailed(RuntimeError):
    pass


class AuditPruneRefused(RuntimeError):
    """The records the retention job would delete do not verify: deleting them would destroy the
    evidence of the tampering, so nothing is deleted."""


def cut_signature(key: bytes, cut: Checkpoint) -> str:
    """The MAC of a retention cut; labelled apart from a head checkpoint's, so neither passes for the other."""
    message = f"omnigate audit cut\n{cut.seq}\n{cut.hash}\n{cut.at.isoformat()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


async def _latest_cut(conn: AsyncConnection) -> tuple[Checkpoint, str] | None:
    """The latest retention cut and its MAC (unchecked), if the log was ever pruned."""
    stmt = select(_cuts.c.seq, _cuts.c.hash, _cuts.c.cut_at, _cuts.c.mac).order_by(_cuts.c.seq.desc()).limit(1)
    row = (await conn.execute(stmt)).first()
    return (Checkpoint(row.seq, row.hash, row.cut_at), row.mac) if row else None


async def _chain_start(conn: AsyncConnection) -> tuple[int, str]:
    """The sequence number and hash the next record chains onto when the log is empty: the latest
    cut's, or none (the genesis)."""
    found = await _latest_cut(conn)
    return (found[0].seq, found[0].hash) if found else (0, GENESIS)


class AuditLog:
    """Appends entries to the chain, several per call in one transaction."""

    def __init__(self, engine: AsyncEngine, clock: Clock, key: bytes) -> None:
        self._engine = writer(engine)
        self._postgres = not is_sqlite(str(engine.url))
        self._clock = clock
        self._key = key

    async def verify(self, checkpoint: Checkpoint | None = None) -> ChainReport:
        """`verify_chain` under this log's key."""
        return await verify_chain(self._engine, self._key, checkpoint)

    async def append(self, entries: Sequence[AuditEntry], conn: AsyncConnection | None = None) -> list[int]:
        """The sequence numbers given to `entries`, in order.

        With `conn`, inside that connection's transaction (a change and the audit of it commit
        together): its writers are already queued (the advisory lock; SQLite's write lock), so
        no retry is needed, and a failure fails the change.
        """
        if not entries:
            return []
        if conn is not None:
            return await self.append_in(conn, entries)
        for attempt in range(_ATTEMPTS):
            try:
                return await self._append_once(entries)
            except IntegrityError:
                # Another writer took the head: chain onto the new one, after a random pause that
                # grows, so that writers racing in step fall out of step instead of all retrying at once.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - retry jitter, not a secret
        raise AuditAppendFailed("could not append to the audit log: too much contention")

    async def _append_once(self, entries: Sequence[AuditEntry]) -> list[int]:
        async with self._engine.begin() as conn:
            return await self.append_in(conn, entries)

    async def append_in(self, conn: AsyncConnection, entries: Sequence[AuditEntry]) -> list[int]:
        """Append within the caller's write transaction, so an operator's action and its record
        commit together or not at all (PostgreSQL: serialized by an advisory transaction lock;
        SQLite: the caller's BEGIN IMMEDIATE already holds the write lock)."""
        if not entries:
            return []
        if self._postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        head = (await conn.execute(select(_table.c.seq, _table.c.hash).order_by(_table.c.seq.desc()).limit(1))).first()
        seq, prev = (head.seq, head.hash) if head else await _chain_start(conn)
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        for entry in entries:
            seq += 1
            digest = record_hash(self._key, seq, now, entry, prev)
            rows.append(
                {
                    "seq": seq,
                    "recorded_at": now,
                    "actor": entry.actor,
                    "role": entry.role,
                    "channel": entry.channel,
                    "operation": entry.operation,
                    "fields": entry.fields,
                    "subject": entry.subject,
                    "outcome": entry.outcome,
                    "trace_id": entry.trace_id,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        await conn.execute(insert(AuditRecord), rows)
        return [row["seq"] for row in rows]

    async def prune(self, before: datetime, *, dry_run: bool) -> int:
        """Delete the records dated at or before `before` under a signed cut the rest verifies from
        (with `dry_run`, only count them); how many. Only a run from the start goes: a record is
        never deleted while an older one is kept. Refused (`AuditPruneRefused`) when those records
        do not verify, since deleting them would destroy the evidence."""
        async with self._engine.begin() as conn:
            if self._postgres:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            start = await _verified_start(conn, self._key)
            if isinstance(start, ChainReport):
                raise AuditPruneRefused(_refusal(start))
            through = await _prunable_through(conn, before)
            if through <= start.seq:
                return 0
            report = await _walk(conn, self._key, start, through=through)
            if not report.ok:
                raise AuditPruneRefused(_refusal(report))
            if not dry_run:
                await self._cut(conn, through)
            return report.checked

    async def _cut(self, conn: AsyncConnection, through: int) -> None:
        """Sign a checkpoint of the chain at record `through`, then delete it and every record before."""
        digest = (await conn.execute(select(_table.c.hash).where(_table.c.seq == through))).scalar_one()
        cut = Checkpoint(through, digest, self._clock.now())
        await conn.execute(
            insert(AuditCut).values(seq=cut.seq, hash=cut.hash, cut_at=cut.at, mac=cut_signature(self._key, cut))
        )
        await conn.execute(delete(AuditRecord).where(AuditRecord.seq <= through))


async def _prunable_through(conn: AsyncConnection, before: datetime) -> int:
    """The last record of the run from the start dated at or before `before` (0: none)."""
    kept = (await conn.execute(select(func.min(_table.c.seq)).where(_table.c.recorded_at > before))).scalar()
    if kept is not None:
        return int(kept) - 1
    return int((await conn.execute(select(func.max(_table.c.seq)))).scalar() or 0)


def _refusal(report: ChainReport) -> str:
    return f"the audit log does not verify at record {report.broken_seq}: {report.reason}; nothing was deleted"


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    broken_seq: int | None = None
    reason: str = ""
    pruned_through: int = 0  # the retention job deleted the records up to this one, under a signed cut

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


async def head(engine: AsyncEngine) -> Checkpoint | None:
    """The last record's sequence number and hash, for a checkpoint: the latest cut's when the
    retention job pruned every record, None for a log never written."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(_table.c.seq, _table.c.hash, _table.c.recorded_at).order_by(_table.c.seq.desc()).limit(1)
            )
        ).first()
        if row is None:
            found = await _latest_cut(conn)  # every record was pruned: the cut is the head
            return found[0] if found else None
    return Checkpoint(row.seq, row.hash, row.recorded_at)


async def verify_chain(
    engine: AsyncEngine, key: bytes, checkpoint: Checkpoint | None = None, batch: int = 1000
) -> ChainReport:
    """Walk the chain from the first record, or from the latest signed cut of the retention job;
    report the first record that does not hold.

    With `checkpoint` (the latest signed head), a log that ends before it, or whose record at
    the checkpoint differs from it, is reported too: the tail was cut or rewritten.
    """
    async with engine.connect() as conn:
        start = await _verified_start(conn, key)
        if isinstance(start, ChainReport):
            return start
        if checkpoint is not None and checkpoint.seq == start.seq and checkpoint.hash != start.hash:
            reason = f"the retention cut differs from the signed checkpoint of {checkpoint.at}"
            return ChainReport(0, start.seq, reason, start.seq)
        return await _walk(conn, key, start, checkpoint=checkpoint, batch=batch)


async def _verified_start(conn: AsyncConnection, key: bytes) -> Checkpoint | ChainReport:
    """Where the chain begins: after the latest cut, once its signature holds; else at the genesis.
    A record numbered at or below it is reported: none belongs there (the cut deleted them in its
    own transaction), and the walk would never check it, while exports would show it as an access."""
    found = await _latest_cut(conn)
    if found is None:
        start = Checkpoint(0, GENESIS, datetime.min.replace(tzinfo=UTC))
    else:
        start, mac = found
        if not hmac.compare_digest(cut_signature(key, start), mac):
            return ChainReport(0, start.seq, "the retention cut there is not signed by the audit key", start.seq)
    stray = (await conn.execute(select(func.min(_table.c.seq)).where(_table.c.seq <= start.seq))).scalar()
    if stray is not None:
        where = f"the retention cut at record {start.seq}" if start.seq else "the first record"
        return ChainReport(0, int(stray), f"it is numbered before the start of the chain ({where}): forged", start.seq)
    return start


async def _walk(
    conn: AsyncConnection,
    key: bytes,
    start: Checkpoint,
    *,
    through: int | None = None,
    checkpoint: Checkpoint | None = None,
    batch: int = 1000,
) -> ChainReport:
    """Check the records after `start` (the first linked to its hash), up to `through` or the end."""
    expected_seq, prev, checked = start.seq + 1, start.hash, 0
    while True:
        stmt = select(_table).where(_table.c.seq >= expected_seq)
        if through is not None:
            stmt = stmt.where(_table.c.seq <= through)
        rows = (await conn.execute(stmt.order_by(_table.c.seq).limit(batch))).all()
        if not rows:
            if through is not None and expected_seq <= through:
                return ChainReport(checked, expected_seq, f"record {expected_seq} is missing", start.seq)
            return _against(checkpoint, checked, expected_seq - 1, start.seq)
        for row in rows:
            if row.seq != expected_seq:
                return ChainReport(checked, expected_seq, f"record {expected_seq} is missing", start.seq)
            if row.prev_hash != prev:
                return ChainReport(checked, row.seq, "its link to the previous record does not match", start.seq)
            if not hmac.compare_digest(record_hash(key, row.seq, row.recorded_at, row, row.prev_hash), row.hash):
                return ChainReport(checked, row.seq, _mismatch(row), start.seq)
            if checkpoint is not None and row.seq == checkpoint.seq and row.hash != checkpoint.hash:
                reason = f"it differs from the signed checkpoint of {checkpoint.at}"
                return ChainReport(checked, row.seq, reason, start.seq)
            prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1


def _mismatch(row: Row[Any]) -> str:
    if plain_hash(row.seq, row.recorded_at, row, row.prev_hash) == row.hash:
        return "its hash is unkeyed SHA-256 (written before the chain was keyed: see `audit-rechain`), or was forged"
    return "its content does not match its hash (or the audit key is not the one it was written with)"


def _against(checkpoint: Checkpoint | None, checked: int, last: int, pruned: int) -> ChainReport:
    """The report of a chain that held up to record `last`, against the latest signed checkpoint."""
    if checkpoint is None or last >= checkpoint.seq:
        return ChainReport(checked, pruned_through=pruned)
    return ChainReport(
        checked,
        last + 1,
        f"record {last + 1} is missing: the signed checkpoint of {checkpoint.at} saw the log reach record "
        f"{checkpoint.seq} (the tail was cut)",
        pruned,
    )


_TRIGGERS = {  # the append-only triggers of migration 0003, lifted for a re-chain only
    "sqlite": (
        ["DROP TRIGGER audit_log_no_update"],
        [
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        ],
    ),
    "postgresql": (
        ["ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"],
        ["ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"],
    ),
}


async def rechain(engine: AsyncEngine, key: bytes) -> int:
    """Key a chain written with unkeyed SHA-256 (before this version): every hash recomputed as
    an HMAC under `key`, in one transaction. Refused unless the unkeyed chain holds whole, so a
    tampered log is never laundered. Needs the rights to lift the append-only trigger. Returns
    how many records were re-chained."""
    async with writer(engine).begin() as conn:
        rows = (await conn.execute(select(_table).order_by(_table.c.seq))).all()
        prev = GENESIS
        for expected, row in enumerate(rows, start=1):
            if (
                row.seq != expected
                or row.prev_hash != prev
                or plain_hash(row.seq, row.recorded_at, row, prev) != row.hash
            ):
                raise AuditAppendFailed(f"record {expected} does not hold under unkeyed SHA-256: not re-chained")
            prev = row.hash
        lift, restore = _TRIGGERS[conn.dialect.name]
        for statement in lift:
            await conn.execute(text(statement))
        prev = GENESIS
        for row in rows:
            digest = record_hash(key, row.seq, row.recorded_at, row, prev)
            await conn.execute(
                update(AuditRecord).where(AuditRecord.seq == row.seq).values(prev_hash=prev, hash=digest)
            )
            prev = digest
        for statement in restore:
            await conn.execute(text(statement))
    return len(rows)


@dataclass(frozen=True, slots=True)
class Access:
    """One recorded access to a person's data, as the DPO is shown it."""

    recorded_at: datetime
    actor: str
    role: str
    channel: str
    operation: str
    outcome: str


async def accesses_to(engine: AsyncEngine, customer_key: str, *, limit: int) -> list[Access]:
    """The latest accesses to one customer's data, newest first (the audit log's subject index)."""
    stmt = (
        select(
            AuditRecord.recorded_at,
            AuditRecord.actor,
            AuditRecord.role,
            AuditRecord.channel,
            AuditRecord.operation,
            AuditRecord.outcome,
        )
        .where(AuditRecord.subject == customer_key)
        .order_by(AuditRecord.seq.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [Access(*row) for row in await conn.execute(stmt)]
