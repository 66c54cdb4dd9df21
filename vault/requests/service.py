"""Data-subject requests: open, run (resumably), extend, list; the export generated on read.

    requests = DataSubjectRequests(ctx, registry, ledger)
    request = await requests.open("ERASURE", customer_key=7, subject_id="ab12...", requested_by="dpo-1")
    request = await requests.run(request.id)          # every step idempotent: safe to run again

A request is PENDING -> IN_PROGRESS -> COMPLETED, or REJECTED when the person is unknown. Its
deadline is one month from receipt (GDPR Art. 12(3)), extendable once by up to two months with
a recorded reason. An erasure is written to the erasure ledger before its first step, then each
registered source erases in turn; `steps_done` records each finished source, so a run that was
interrupted resumes with the next one and the request stays IN_PROGRESS until all are done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db import writer
from policies.retention import Period
from vault.models import Subject
from vault.requests.errors import AlreadyExtended, DeadlinePassed, InvalidExtension, RequestClosed, RequestNotFound
from vault.requests.export import build_export
from vault.requests.ledger import ErasureLedger, LedgerEntry
from vault.requests.models import (
    COMPLETED,
    ERASURE,
    EXPORT,
    IN_PROGRESS,
    PENDING,
    REJECTED,
    DataSubjectRequestRow,
)
from vault.requests.sources import DataSubject, ExpiryRefused, Retained, SourceContext, SourceRegistry, erase_all

__all__ = [
    "COMPLETED",
    "ERASURE",
    "EXPORT",
    "EXPORT_READABLE_FOR",
    "IN_PROGRESS",
    "PENDING",
    "REJECTED",
    "DataSubjectRequests",
    "Request",
    "RetentionIncomplete",
]

RESPONSE_TIME = Period(months=1)  # Art. 12(3)
MAX_EXTENSION_MONTHS = 2
MAX_REASON = 2000
EXPORT_READABLE_FOR = timedelta(days=30)  # after that the DPO opens a new request
OPEN = (PENDING, IN_PROGRESS)
BATCH = 500  # people per batch erasure (and per IN (...) list)

OnErased = Callable[[DataSubject], Awaitable[None]]
Progress = Callable[[str, int, int], None]  # (step, done, total)


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    kind: str
    status: str
    customer_key: int
    subject_id: str | None
    requested_by: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    extension_reason: str | None
    rejection_reason: str | None
    steps_done: tuple[str, ...]
    retained: tuple[Retained, ...]

    @property
    def subject(self) -> DataSubject | None:
        return DataSubject(self.subject_id, self.customer_key) if self.subject_id else None

    def overdue(self, now: datetime) -> bool:
        return self.status in OPEN and self.due_at < now


def _request(row: Any) -> Request:
    return Request(
        id=row.id,
        kind=row.kind,
        status=row.status,
        customer_key=row.customer_key,
        subject_id=row.subject_id,
        requested_by=row.requested_by,
        received_at=row.received_at,
        due_at=row.due_at,
        completed_at=row.completed_at,
        extension_reason=row.extension_reason,
        rejection_reason=row.rejection_reason,
        steps_done=tuple(row.steps_done or ()),
        retained=tuple(
            Retained(r["category"], r["reason"], r["legalBasis"], datetime.fromisoformat(r["until"]))
            for r in row.retained or ()
        ),
    )


_T = DataSubjectRequestRow


class RetentionIncomplete(RuntimeError):
    """The retention job ran every source, but some refused to delete what outlived its period."""

    def __init__(self, counts: dict[str, int], refused: Sequence[ExpiryRefused]) -> None:
        super().__init__("; ".join(str(r) for r in refused))
        self.counts = counts
        self.refused = tuple(refused)


def _found(request: Request | None) -> Request:
    """A request just written in this unit of work (its absence is a bug, not a client's error)."""
    if request is None:
        raise RequestNotFound()
    return request


class DataSubjectRequests:
    def __init__(
        self,
        ctx: SourceContext,
        registry: SourceRegistry,
        ledger: ErasureLedger,
        on_erased: OnErased | None = None,
    ) -> None:
        self.ctx = ctx
        self.registry = registry
        self.ledger = ledger
        self.on_erased = on_erased

    # ---------------------------------------------------------------- reading
    async def get(self, request_id: int, conn: AsyncConnection | None = None) -> Request | None:
        stmt = select(_T).where(_T.id == request_id)
        if conn is not None:
            row = (await conn.execute(stmt)).first()
        else:
            async with self.ctx.engine.connect() as own:
                row = (await own.execute(stmt)).first()
        return _request(row) if row is not None else None

    async def _many(self, request_ids: Sequence[int]) -> list[Request]:
        async with self.ctx.engine.connect() as conn:
            return [
                _request(row) for row in await conn.execute(select(_T).where(_T.id.in_(request_ids)).order_by(_T.id))
            ]

    async def recent(self, first: int = 20, after: int | None = None, *, overdue: bool = False) -> list[Request]:
        """Newest first; `after` is the id of the last request of the previous page."""
        stmt = select(_T).order_by(_T.id.desc()).limit(first)
        if after is not None:
            stmt = stmt.where(_T.id < after)
        if overdue:
            stmt = stmt.where(_T.status.in_(OPEN), _T.due_at < self.ctx.clock.now())
        async with self.ctx.engine.connect() as conn:
            return [_request(row) for row in await conn.execute(stmt)]

    async def unfinished(self) -> list[int]:
        """Ids of requests a run has not finished (interrupted, or opened for `dsr run`), oldest first."""
        async with self.ctx.engine.connect() as conn:
            stmt = select(_T.id).where(_T.status.in_(OPEN)).order_by(_T.id)
            return list((await conn.execute(stmt)).scalars())

    async def export_document(self, request: Request) -> dict[str, Any] | None:
        """The export of a completed EXPORT request, generated now (never stored); None otherwise,
        or when it is older than EXPORT_READABLE_FOR."""
        subject = request.subject
        if request.kind != EXPORT or request.status != COMPLETED or subject is None:
            return None
        if request.completed_at is not None and self.ctx.clock.now() - request.completed_at > EXPORT_READABLE_FOR:
            return None
        return await build_export(self.ctx, self.registry, subject)

    # ---------------------------------------------------------------- changes
    async def open(self, kind: str, *, customer_key: int, subject_id: str | None, requested_by: str) -> Request:
        """Record a request as received now; an unknown person's is REJECTED at once."""
        if kind not in (EXPORT, ERASURE):
            raise ValueError(f"unknown request kind {kind!r}")
        now = self.ctx.clock.now()
        rejected = subject_id is None
        async with writer(self.ctx.engine).begin() as conn:
            result = await conn.execute(
                insert(_T)
                .values(
                    kind=kind,
                    status=REJECTED if rejected else PENDING,
                    customer_key=customer_key,
                    subject_id=subject_id,
                    requested_by=requested_by[:100],
                    received_at=now,
                    due_at=RESPONSE_TIME.until(now),
                    completed_at=now if rejected else None,
                    rejection_reason="No such customer." if rejected else None,
                    steps_done=[],
                    retained=[],
                )
                .returning(_T.id)
            )
            request_id = result.scalar_one()
            found = await self.get(request_id, conn)
        return _found(found)

    async def extend(self, request_id: int, reason: str, months: int = MAX_EXTENSION_MONTHS) -> Request:
        """Push the deadline back once, by 1 or 2 months, for the recorded reason (Art. 12(3)).

        Only while the deadline still runs: extending an overdue request would hide the breach
        from the overdue list, and the law allows an extension only within the first month."""
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            raise InvalidExtension(MAX_REASON)
        if not 1 <= months <= MAX_EXTENSION_MONTHS:
            raise ValueError("an extension is 1 or 2 months")
        async with writer(self.ctx.engine).begin() as conn:
            row = (await conn.execute(select(_T).where(_T.id == request_id).with_for_update())).first()
            if row is None:
                raise RequestNotFound()
            if row.status not in OPEN:
                raise RequestClosed()
            if row.extension_reason is not None:
                raise AlreadyExtended()
            if row.due_at < self.ctx.clock.now():
                raise DeadlinePassed()
            await conn.execute(
                update(_T)
                .where(_T.id == request_id)
                .values(due_at=Period(months=months).until(row.due_at), extension_reason=reason)
            )
            found = await self.get(request_id, conn)
        return _found(found)

    async def run(self, request_id: int, progress: Progress | None = None) -> Request:
        """Carry the request out, or finish what an interrupted run began. Safe to call again."""
        request = await self.get(request_id)
        if request is None:
            raise RequestNotFound()
        subject = request.subject
        if request.status in (COMPLETED, REJECTED) or subject is None:
            return request
        if request.kind == ERASURE:
            await self._erase(request, subject, progress)
        await self._set(request_id, status=COMPLETED, completed_at=self.ctx.clock.now())
        found = await self.get(request_id)
        return _found(found)

    async def _erase(self, request: Request, subject: DataSubject, progress: Progress | None) -> None:
        await self._erase_batch([request], progress)

    async def run_many(self, request_ids: Sequence[int], progress: Progress | None = None) -> int:
        """Finish many requests, erasures in batches of BATCH (a few statements per source per
        batch instead of per person). Returns how many were looked at."""
        for start in range(0, len(request_ids), BATCH):
            found = await self._many(request_ids[start : start + BATCH])
            open_ = [r for r in found if r.status in OPEN and r.subject is not None]
            erasures = [r for r in open_ if r.kind == ERASURE]
            if erasures:
                await self._erase_batch(erasures, None)
            await self._set([r.id for r in open_], status=COMPLETED, completed_at=self.ctx.clock.now())
            if progress is not None:
                progress("requests", min(start + BATCH, len(request_ids)), len(request_ids))
        return len(request_ids)

    async def _erase_batch(self, requests: Sequence[Request], progress: Progress | None) -> None:
        """Every registered source erases the batch's people, in order; each finished source is
        recorded on each request, so an interrupted batch resumes with the next source."""
        pending = [r for r in requests if r.status == PENDING]
        if pending:
            # Written down before anything is erased: a backup restored later replays it.
            self.ledger.append_many(
                [LedgerEntry(r.subject_id or "", r.customer_key, r.received_at) for r in pending if r.subject_id]
            )
            await self._set([r.id for r in pending], status=IN_PROGRESS)  # erased from now on (erasures_running)
            await self._announce(pending)  # their tokens and caches: refused now, not when the last source is done
        sources = self.registry.sources
        state = {r.id: (list(r.steps_done), [x.as_json() for x in r.retained]) for r in requests}
        for n, source in enumerate(sources):
            if progress is not None:
                progress(source.name, n, len(sources))
            todo = [r for r in requests if source.name not in state[r.id][0]]
            subjects = [s for s in (r.subject for r in todo) if s is not None]
            if not subjects:
                continue
            retained = await erase_all(source, self.ctx, subjects)
            for r in todo:
                steps, kept = state[r.id]
                steps.append(source.name)
                kept.extend(x.as_json() for x in retained.get(r.subject_id or "", []))
            await self._record_steps([(r.id, *state[r.id]) for r in todo])
        if progress is not None:
            progress("done", len(sources), len(sources))
        await self._announce(requests)

    async def _announce(self, requests: Sequence[Request]) -> None:
        if self.on_erased is not None:
            for r in requests:
                if r.subject is not None:
                    await self.on_erased(r.subject)

    async def _record_steps(self, rows: Sequence[tuple[int, list[str], list[dict[str, str]]]]) -> None:
        """Each request's finished steps and what they retained, in one statement for the batch."""
        stmt = (
            update(_T)
            .where(_T.id == bindparam("request_id"), or_(_T.status == PENDING, _T.status == IN_PROGRESS))
            .values(steps_done=bindparam("steps"), retained=bindparam("kept"))
        )
        async with writer(self.ctx.engine).begin() as conn:
            await conn.execute(stmt, [{"request_id": i, "steps": steps, "kept": kept} for i, steps, kept in rows])

    async def _set(self, request_ids: int | Sequence[int], **values: Any) -> None:
        """Change open requests only: a finished one never reopens."""
        ids = [request_ids] if isinstance(request_ids, int) else list(request_ids)
        async with writer(self.ctx.engine).begin() as conn:
            await conn.execute(update(_T).where(_T.id.in_(ids), _T.status.in_(OPEN)).values(**values))

    # ---------------------------------------------------------------- the retention job
    async def expire(self, *, dry_run: bool) -> dict[str, int]:
        """What every source holds past its period (policies/retention.toml), deleted or, with
        `dry_run`, only counted: category -> count. A source that refuses does not stop the
        others: `RetentionIncomplete` then carries their counts and every refusal."""
        counts: dict[str, int] = {}
        refused: list[ExpiryRefused] = []
        for source in self.registry.expiring():
            try:
                found = await source.expire(self.ctx, dry_run=dry_run)
            except ExpiryRefused as refusal:
                refused.append(refusal)
                continue
            for category, n in found.items():
                counts[category] = counts.get(category, 0) + n
        if refused:
            raise RetentionIncomplete(counts, refused)
        return counts

    # ---------------------------------------------------------------- after a restore
    async def replay_ledger(self, progress: Progress | None = None) -> int:
        """Erase again everyone the ledger names whom this database does not show erased (a backup
        taken before their erasure was restored). Returns how many were erased."""
        entries = {e.subject_id: e for e in self.ledger.entries()}
        if not entries:
            return 0
        erased: set[str] = set()
        ids = list(entries)
        async with self.ctx.engine.connect() as conn:
            for start in range(0, len(ids), BATCH):
                stmt = select(Subject.id).where(
                    Subject.id.in_(ids[start : start + BATCH]), Subject.erased_at.is_not(None)
                )
                erased |= set((await conn.execute(stmt)).scalars())
        todo = [DataSubject(e.subject_id, e.customer_key) for s, e in entries.items() if s not in erased]
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            if progress is not None:
                progress("replay", start, len(todo))
            for source in self.registry.sources:
                await erase_all(source, self.ctx, batch)
            if self.on_erased is not None:
                for subject in batch:
                    await self.on_erased(subject)
        if progress is not None:
            progress("replay", len(todo), len(todo))
        return len(todo)
