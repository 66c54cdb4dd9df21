"""The vault's own personal-data sources: the keys and blind indexes, the consent ledger, the
audit trail of accesses, and the data-subject requests themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select

from core.db import writer
from vault.audit import AuditPruneRefused
from vault.audit_models import AuditRecord
from vault.models import ConsentRecord, DataKey, Lookup, Subject
from vault.requests.models import DataSubjectRequestRow
from vault.requests.sources import DataSubject, ExpiryRefused, Retained, SourceContext

__all__ = ["AccessLogSource", "ConsentSource", "KeySource", "RequestSource"]


class KeySource:
    """The person's data keys and blind indexes: shredding them makes every sealed copy unreadable,
    backups included once the KEK that wrapped them is retired."""

    name: str = "keys"
    tables: tuple[str, ...] = ("vault_subjects", "vault_data_keys", "vault_lookups")

    def describe(self) -> tuple[str, ...]:
        return ("profile",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> dict[str, Any]:
        async with ctx.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Subject.created_at, Subject.erased_at).where(Subject.id == subject.subject_id)
                )
            ).first()
            lookups = (await conn.execute(select(Lookup.kind).where(Lookup.subject_id == subject.subject_id))).scalars()
            kinds = sorted(set(lookups))
            keys = (
                await conn.execute(
                    select(func.count()).select_from(DataKey).where(DataKey.subject_id == subject.subject_id)
                )
            ).scalar_one()
        return {
            "createdAt": row.created_at.isoformat() if row else None,
            "erasedAt": row.erased_at.isoformat() if row and row.erased_at else None,
            "dataKeys": keys,
            "indexedFor": kinds,  # what the person can be found by (keyed digests, not the values)
        }

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        async with writer(ctx.engine).begin() as conn:
            await ctx.vault.shred_many(conn, [s.subject_id for s in subjects])
        return {s.subject_id: [] for s in subjects}


class ConsentSource:
    """The consent ledger: kept after erasure as proof (Art. 7(1)); it names an opaque id only."""

    name: str = "consents"
    tables: tuple[str, ...] = ("vault_consents",)

    def describe(self) -> tuple[str, ...]:
        return ("consents",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        history = (await ctx.vault.consent_history([subject.subject_id]))[subject.subject_id]
        return [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "recordedAt": c.recorded_at.isoformat(),
                "channel": c.channel,
                "policyVersion": c.policy_version,
                "method": c.method,
            }
            for c in history
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        """Nothing is deleted: each person's proof is kept for its period after their last decision."""
        stmt = (
            select(ConsentRecord.subject_id, func.max(ConsentRecord.recorded_at))
            .where(ConsentRecord.subject_id.in_([s.subject_id for s in subjects]))
            .group_by(ConsentRecord.subject_id)
        )
        async with ctx.engine.connect() as conn:
            last = {subject: at for subject, at in await conn.execute(stmt)}
        return {
            s.subject_id: [ctx.retained("consents", last[s.subject_id])] if s.subject_id in last else []
            for s in subjects
        }

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """The proof of an erased person's consents, once its period after their last decision ended."""
        period = ctx.retention.period("consents")
        now = ctx.clock.now()
        last = (
            select(ConsentRecord.subject_id, func.max(ConsentRecord.recorded_at).label("last"))
            .join(Subject, Subject.id == ConsentRecord.subject_id)
            .where(Subject.erased_at.is_not(None))
            .group_by(ConsentRecord.subject_id)
        )
        async with writer(ctx.engine).begin() as conn:
            expired = [s for s, at in await conn.execute(last) if period.until(at) <= now]
            count = 0
            for n in range(0, len(expired), 500):
                chunk = expired[n : n + 500]
                if dry_run:
                    stmt = select(func.count()).select_from(ConsentRecord).where(ConsentRecord.subject_id.in_(chunk))
                    count += (await conn.execute(stmt)).scalar_one()
                else:
                    result = await conn.execute(delete(ConsentRecord).where(ConsentRecord.subject_id.in_(chunk)))
                    count += result.rowcount or 0
        return {"consents": count}


class AccessLogSource:
    """Who accessed the person's data (Art. 15(1)(c): the recipients), from the audit trail."""

    name: str = "accessLog"
    tables: tuple[str, ...] = ("audit_log",)

    def describe(self) -> tuple[str, ...]:
        return ("access_log",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        stmt = (
            select(
                AuditRecord.recorded_at,
                AuditRecord.actor,
                AuditRecord.role,
                AuditRecord.channel,
                AuditRecord.operation,
                AuditRecord.fields,
                AuditRecord.outcome,
            )
            .where(AuditRecord.subject == str(subject.customer_key))
            .order_by(AuditRecord.seq)
        )
        async with ctx.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {
                "at": r.recorded_at.isoformat(),
                "actor": r.actor,
                "role": r.role,
                "channel": r.channel,
                "operation": r.operation,
                "fields": r.fields.split(),
                "outcome": r.outcome,
            }
            for r in rows
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return [ctx.retained("access_log")]  # append-only: the erasure itself is recorded there too

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        return {s.subject_id: [ctx.retained("access_log")] for s in subjects}

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """Records older than their period, deleted under a signed cut the rest of the chain
        verifies from; refused when they do not verify (that would erase the evidence)."""
        before = ctx.retention.period("access_log").ended_by(ctx.clock.now())
        try:
            return {"access_log": await ctx.audit.prune(before, dry_run=dry_run)}
        except AuditPruneRefused as refused:
            raise ExpiryRefused("access_log", str(refused)) from None


class RequestSource:
    """The person's data-subject requests: kept as proof that each was answered (Art. 5(2))."""

    name: str = "requests"
    tables: tuple[str, ...] = ("vault_subject_requests",)

    def describe(self) -> tuple[str, ...]:
        return ("data_subject_requests",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        t = DataSubjectRequestRow
        stmt = (
            select(t.id, t.kind, t.status, t.received_at, t.due_at, t.completed_at)
            .where(t.customer_key == subject.customer_key)
            .order_by(t.id)
        )
        async with ctx.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "receivedAt": r.received_at.isoformat(),
                "dueAt": r.due_at.isoformat(),
                "completedAt": r.completed_at.isoformat() if r.completed_at else None,
            }
            for r in rows
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return [ctx.retained("data_subject_requests")]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        return {s.subject_id: [ctx.retained("data_subject_requests")] for s in subjects}

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """Finished requests older than their period (received + period)."""
        period = ctx.retention.period("data_subject_requests")
        t = DataSubjectRequestRow
        async with writer(ctx.engine).begin() as conn:
            rows = (
                await conn.execute(select(t.id, t.received_at).where(t.status.in_(("COMPLETED", "REJECTED"))))
            ).all()
            expired = [r.id for r in rows if period.until(r.received_at) <= ctx.clock.now()]
            if expired and not dry_run:
                for n in range(0, len(expired), 500):
                    await conn.execute(delete(t).where(t.id.in_(expired[n : n + 500])))
        return {"data_subject_requests": len(expired)}
