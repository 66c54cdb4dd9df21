"""The email outbox for data-subject requests: which messages were sent to the person, when
(the template, never the content, which is sealed under their key). Erasure deletes them:
a pending message would have nowhere to go (the address is shredded) and nothing is kept by law."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from commerce.notifications.models import EmailOutbox
from core.db import writer
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["EmailOutboxSource"]


class EmailOutboxSource:
    name: str = "emails"
    tables: tuple[str, ...] = ("email_outbox",)

    def describe(self) -> tuple[str, ...]:
        return ("notifications",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        stmt = (
            select(
                EmailOutbox.template,
                EmailOutbox.language,
                EmailOutbox.status,
                EmailOutbox.created_at,
                EmailOutbox.sent_at,
            )
            .where(EmailOutbox.customer_key == subject.customer_key)
            .order_by(EmailOutbox.id)
        )
        async with ctx.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {
                "template": r.template,
                "language": r.language,
                "status": r.status,
                "createdAt": r.created_at.isoformat(),
                "sentAt": r.sent_at.isoformat() if r.sent_at else None,
            }
            for r in rows
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        async with writer(ctx.engine).begin() as conn:
            await conn.execute(
                delete(EmailOutbox).where(EmailOutbox.customer_key.in_([s.customer_key for s in subjects]))
            )
        return {s.subject_id: [] for s in subjects}
