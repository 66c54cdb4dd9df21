"""The audit trail: who read or changed whose data, append-only and hash-chained.

Each record's hash covers its content, its sequence number and the previous record's hash,
so changing, removing or reordering any record breaks the chain from there on, and
`verify_chain` names the first broken record. Records carry keys only, never PII.

Appends are serialized by the database, so several gateway processes stay correct: the
sequence number is the primary key (a writer that raced on the same head is refused and
retries on the new head), on PostgreSQL a transaction-scoped advisory lock queues the
writers first, and on SQLite `BEGIN IMMEDIATE` does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import Clock
from core.db import is_sqlite, writer
from vault.audit_models import AuditRecord

__all__ = ["GENESIS", "Access", "AuditEntry", "AuditLog", "ChainReport", "accesses_to", "record_hash", "verify_chain"]

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


def record_hash(seq: int, recorded_at: datetime, entry: AuditEntry | AuditRecord | Row[Any], prev_hash: str) -> str:
    """SHA-256 over a canonical JSON of the record's content and the previous record's hash.

    `entry` is an entry to append, or a stored record (whose subject column is `customer_key`)."""
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
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def _subject_of(entry: Any) -> str:
    """An entry's or ORM record's `subject`; a table row's `customer_key` (the column's name)."""
    subject = getattr(entry, "subject", None)
    return str(subject if subject is not None else entry.customer_key)


class AuditAppendFailed(RuntimeError):
    pass


class AuditLog:
    """Appends entries to the chain, several per call in one transaction."""

    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self._engine = writer(engine)
        self._postgres = not is_sqlite(str(engine.url))
        self._clock = clock

    async def append(self, entries: Sequence[AuditEntry]) -> list[int]:
        """The sequence numbers given to `entries`, in order."""
        if not entries:
            return []
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
            digest = record_hash(seq, now, entry, prev)
            rows.append(
                {
                    "seq": seq,
                    "recorded_at": now,
                    "actor": entry.actor,
                    "role": entry.role,
                    "channel": entry.channel,
                    "operation": entry.operation,
                    "fields": entry.fields,
                    "customer_key": entry.subject,
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


async def verify_chain(engine: AsyncEngine, batch: int = 1000) -> ChainReport:
    """Walk the chain from the first record; report the first record that does not hold."""
    expected_seq, prev, checked = 1, GENESIS, 0
    async with engine.connect() as conn:
        while True:
            rows = (
                await conn.execute(
                    select(_table).where(_table.c.seq >= expected_seq).order_by(_table.c.seq).limit(batch)
                )
            ).all()
            if not rows:
                return ChainReport(checked)
            for row in rows:
                if row.seq != expected_seq:
                    return ChainReport(checked, expected_seq, f"record {expected_seq} is missing")
                if row.prev_hash != prev:
                    return ChainReport(checked, row.seq, "its link to the previous record does not match")
                if record_hash(row.seq, row.recorded_at, row, row.prev_hash) != row.hash:
                    return ChainReport(checked, row.seq, "its content does not match its hash")
                prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1


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
