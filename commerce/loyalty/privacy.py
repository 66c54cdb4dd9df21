"""The loyalty context's personal data for data-subject requests: the account (card number
decrypted, balance, the tier it places the person in), every ledger entry and points lot; erased by deletion (the card's
ciphertext and blind index die with the person's key anyway)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from commerce.loyalty.models import TABLE, LoyaltyAccountRow, LoyaltyLot, LoyaltyLotDraw, LoyaltyTransactionRow
from commerce.loyalty.service import standing
from core.db import writer
from vault.cipher import ERASED
from vault.requests.sources import DataSubject, Retained, SourceContext
from vault.service import Sealed

__all__ = ["LoyaltySource"]


class LoyaltySource:
    name: str = "loyalty"
    tables: tuple[str, ...] = ("loyalty_accounts", "loyalty_transactions", "loyalty_lots", "loyalty_lot_draws")

    def describe(self) -> tuple[str, ...]:
        return ("loyalty",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> dict[str, Any] | None:
        key = subject.customer_key
        async with ctx.engine.connect() as conn:
            account = (
                await conn.execute(select(LoyaltyAccountRow).where(LoyaltyAccountRow.customer_key == key))
            ).first()
            if account is None:
                return None
            entries = (
                await conn.execute(
                    select(LoyaltyTransactionRow)
                    .where(LoyaltyTransactionRow.customer_key == key)
                    .order_by(LoyaltyTransactionRow.id)
                )
            ).all()
            lots = (
                await conn.execute(select(LoyaltyLot).where(LoyaltyLot.customer_key == key).order_by(LoyaltyLot.id))
            ).all()
            card = None
            if account.card_sealed is not None:
                [card] = await ctx.vault.decrypt_many(
                    [Sealed(account.subject_id or subject.subject_id, TABLE, "card_number", account.card_sealed)], conn
                )
        held = await standing(ctx.engine, key, ctx.clock.now())
        return {
            "cardNumber": "erased" if card is ERASED else card,
            "balance": account.balance,
            "createdAt": account.created_at.isoformat(),
            "tier": {"name": held.tier.name, "earnedInWindow": held.earned_in_window},  # a profiling result
            "entries": [
                {
                    "kind": e.kind,
                    "points": e.points,
                    "reason": e.reason,
                    "order": e.order_key,
                    "channel": e.channel,
                    "shortfall": e.shortfall,
                    "at": e.created_at.isoformat(),
                }
                for e in entries
            ],
            "lots": [
                {"points": lot.points, "remaining": lot.remaining, "expiresAt": lot.expires_at.isoformat()}
                for lot in lots
            ],
        }

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        keys = [s.customer_key for s in subjects]
        async with writer(ctx.engine).begin() as conn:
            entries = select(LoyaltyTransactionRow.id).where(LoyaltyTransactionRow.customer_key.in_(keys))
            lots = select(LoyaltyLot.id).where(LoyaltyLot.customer_key.in_(keys))
            await conn.execute(
                delete(LoyaltyLotDraw).where(
                    LoyaltyLotDraw.transaction_id.in_(entries) | LoyaltyLotDraw.lot_id.in_(lots)
                )
            )
            await conn.execute(delete(LoyaltyLot).where(LoyaltyLot.customer_key.in_(keys)))
            await conn.execute(delete(LoyaltyTransactionRow).where(LoyaltyTransactionRow.customer_key.in_(keys)))
            await conn.execute(delete(LoyaltyAccountRow).where(LoyaltyAccountRow.customer_key.in_(keys)))
        return {s.subject_id: [] for s in subjects}
