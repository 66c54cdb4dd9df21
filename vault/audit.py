"""The audit trail: who read or changed whose data, append-only and chained by a keyed hash.

Each record's hash is an HMAC-SHA256, under the audit key (held like the KEK, never in the
database), of its content, its sequence number and the previous record's hash. Changing,
removing or reordering any record therefore breaks the chain from there on, and whoever can
write the database but lacks the key cannot compute a chain that holds again. Cutting the
tail leaves a shorter chain that holds: the signed checkpoints the gateway writes outside the
database (`vault.audit_checkpoints`) show what the log had reached. `verify_chain` names the
first record that does not hold. Records carry keys only, never PII.

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
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import Clock
from core.db import is_sqlite, writer
from vault.audit_models import AuditRecord

__all__ = [
    "GENESIS",
    "Access",
    "AuditAppendFailed",
    "AuditEntry",
    "AuditLog",
    "ChainReport",
    "Checkpoint",
    "accesses_to",
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
        seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
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


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


async def head(engine: AsyncEngine) -> Checkpoint | None:
    """The last record's sequence number and hash (None for an empty log), for a checkpoint."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(_table.c.seq, _table.c.hash, _table.c.recorded_at).order_by(_table.c.seq.desc()).limit(1)
            )
        ).first()
    return Checkpoint(row.seq, row.hash, row.recorded_at) if row else None


async def verify_chain(
    engine: AsyncEngine, key: bytes, checkpoint: Checkpoint | None = None, batch: int = 1000
) -> ChainReport:
    """Walk the chain from the first record; report the first record that does not hold.

    With `checkpoint` (the latest signed head), a log that ends before it, or whose record at
    the checkpoint differs from it, is reported too: the tail was cut or rewritten.
    """
    expected_seq, prev, checked = 1, GENESIS, 0
    async with engine.connect() as conn:
        while True:
            rows = (
                await conn.execute(
                    select(_table).where(_table.c.seq >= expected_seq).order_by(_table.c.seq).limit(batch)
                )
            ).all()
            if not rows:
                return _against(checkpoint, checked)
            for row in rows:
                if row.seq != expected_seq:
                    return ChainReport(checked, expected_seq, f"record {expected_seq} is missing")
                if row.prev_hash != prev:
                    return ChainReport(checked, row.seq, "its link to the previous record does not match")
                if not hmac.compare_digest(record_hash(key, row.seq, row.recorded_at, row, row.prev_hash), row.hash):
                    return ChainReport(checked, row.seq, _mismatch(row))
                if checkpoint is not None and row.seq == checkpoint.seq and row.hash != checkpoint.hash:
                    return ChainReport(checked, row.seq, f"it differs from the signed checkpoint of {checkpoint.at}")
                prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1


def _mismatch(row: Row[Any]) -> str:
    if plain_hash(row.seq, row.recorded_at, row, row.prev_hash) == row.hash:
        return "its hash is unkeyed SHA-256 (written before the chain was keyed: see `audit-rechain`), or was forged"
    return "its content does not match its hash (or the audit key is not the one it was written with)"


def _against(checkpoint: Checkpoint | None, checked: int) -> ChainReport:
    if checkpoint is None or checked >= checkpoint.seq:
        return ChainReport(checked)
    return ChainReport(
        checked,
        checked + 1,
        f"record {checked + 1} is missing: the signed checkpoint of {checkpoint.at} saw the log reach record "
        f"{checkpoint.seq} (the tail was cut)",
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
