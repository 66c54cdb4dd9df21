"""The carts context's personal data for data-subject requests: every cart held for the
customer and the guest carts that merged into them (other devices); erased by deletion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select

from commerce.cart.models import CartLineRow, CartRow
from commerce.cart.service import CartRules, delete_expired_guest_carts, erase_customer_carts
from core.db import writer
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["CartSource"]


class CartSource:
    name: str = "carts"
    tables: tuple[str, ...] = ("carts", "cart_lines")

    def __init__(self, rules: CartRules) -> None:
        self.rules = rules  # the guest-cart lifetime the retention job applies

    def describe(self) -> tuple[str, ...]:
        return ("carts",)

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        async with ctx.engine.connect() as conn:
            own = select(CartRow.id).where(CartRow.customer_key == subject.customer_key)
            carts = (
                await conn.execute(
                    select(CartRow)
                    .where(or_(CartRow.customer_key == subject.customer_key, CartRow.merged_into.in_(own)))
                    .order_by(CartRow.created_at, CartRow.id)
                )
            ).all()
            ids = [c.id for c in carts]
            lines = (
                await conn.execute(
                    select(CartLineRow.cart_id, CartLineRow.variant_id, CartLineRow.quantity)
                    .where(CartLineRow.cart_id.in_(ids))
                    .order_by(CartLineRow.id)
                )
            ).all()
        by_cart: dict[str, list[dict[str, int]]] = {}
        for line in lines:
            by_cart.setdefault(line.cart_id, []).append({"variantId": line.variant_id, "quantity": line.quantity})
        return [
            {
                "id": c.id,
                "status": c.status,
                "mergedInto": c.merged_into,
                "discountCodes": list(c.discount_codes),
                "createdAt": c.created_at.isoformat(),
                "updatedAt": c.updated_at.isoformat(),
                "lines": by_cart.get(c.id, []),
            }
            for c in carts
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        await erase_customer_carts(ctx.engine, subject.customer_key)
        return []

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        keys = [s.customer_key for s in subjects]
        async with writer(ctx.engine).begin() as conn:
            own = select(CartRow.id).where(CartRow.customer_key.in_(keys))
            await conn.execute(delete(CartRow).where(CartRow.merged_into.in_(own)))
            await conn.execute(delete(CartRow).where(CartRow.customer_key.in_(keys)))
        return {s.subject_id: [] for s in subjects}

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """Abandoned guest carts (no person, but what a device put in them)."""
        now = ctx.clock.now()
        if not dry_run:
            return {"carts": await delete_expired_guest_carts(ctx.engine, now=now, rules=self.rules)}
        stmt = (
            select(func.count())
            .select_from(CartRow)
            .where(CartRow.customer_key.is_(None), CartRow.updated_at <= now - self.rules.guest_ttl)
        )
        async with ctx.engine.connect() as conn:
            return {"carts": int((await conn.execute(stmt)).scalar_one())}
