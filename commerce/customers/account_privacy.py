"""Sign-in bookkeeping for data-subject requests: token generations, signed-out tokens and
password-reset requests (their hashes are never exported). Deleted on erasure: the erased
check refuses every token of the account anyway, and nothing here is kept by law."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from commerce.customers.session_models import CustomerAccount, PasswordResetToken, RevokedToken
from core.db import writer
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["AccountSecuritySource"]


class AccountSecuritySource:
    name: str = "signIn"
    tables: tuple[str, ...] = ("customer_accounts", "revoked_tokens", "password_reset_tokens")

    def describe(self) -> tuple[str, ...]:
        return ("credentials",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> dict[str, Any]:
        key = subject.customer_key
        async with ctx.engine.connect() as conn:
            generation = (
                await conn.execute(select(CustomerAccount.token_generation).where(CustomerAccount.customer_key == key))
            ).scalar_one_or_none()
            revoked = (
                await conn.execute(
                    select(RevokedToken.expires_at)
                    .where(RevokedToken.customer_key == key)
                    .order_by(RevokedToken.expires_at)
                )
            ).scalars()
            resets = (
                await conn.execute(
                    select(PasswordResetToken.created_at, PasswordResetToken.used_at)
                    .where(PasswordResetToken.customer_key == key)
                    .order_by(PasswordResetToken.id)
                )
            ).all()
            signed_out = [at.isoformat() for at in revoked]
        return {
            "signedOutEverywhereTimes": generation or 0,
            "signedOutTokensValidUntil": signed_out,
            "passwordResets": [
                {"requestedAt": r.created_at.isoformat(), "usedAt": r.used_at.isoformat() if r.used_at else None}
                for r in resets
            ],
        }

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        keys = [s.customer_key for s in subjects]
        async with writer(ctx.engine).begin() as conn:
            for table in (PasswordResetToken, RevokedToken, CustomerAccount):
                await conn.execute(delete(table).where(table.customer_key.in_(keys)))
        return {s.subject_id: [] for s in subjects}
