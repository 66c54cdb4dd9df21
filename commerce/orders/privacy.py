"""The orders context's personal data for data-subject requests.

Export: every order of the customer with its lines, payment, returns, shipping address and
invoice details (decrypted). Erasure keeps the orders for the accounting retention (amounts,
lines, VAT) but no longer as the person's: the customer reference is dropped, the shipping
address was sealed under the person's key (shredded with it), and the invoice details under
their accounting-only key, which the retention job shreds when the period ends.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from commerce.orders.models import OrderReturnRow, OrderRow
from commerce.orders.records import lines_of, order_number
from core.db import writer
from vault.cipher import ERASED
from vault.requests.sources import DataSubject, Retained, SourceContext
from vault.service import Sealed

__all__ = ["OrderSource"]

TABLE = "orders"


def _accounted_at() -> Any:
    """An order's latest accounting event, which its retention counts from: the sale, or its latest
    return, whose refund may be booked in a later year than the sale."""
    last_return = (
        select(func.max(OrderReturnRow.created_at)).where(OrderReturnRow.order_id == OrderRow.id).scalar_subquery()
    )
    return func.coalesce(last_return, OrderRow.placed_at)  # a return never precedes its sale


def _money(value: Any) -> str:
    return str(value)


def _opened(value: object) -> Any:
    if value is None:
        return None
    if value is ERASED:
        return "erased"
    return json.loads(str(value))


class OrderSource:
    name: str = "orders"
    tables: tuple[str, ...] = ("orders", "order_lines", "order_returns")

    def describe(self) -> tuple[str, ...]:
        return ("orders", "invoices")

    async def export(self, ctx: SourceContext, subject: DataSubject) -> list[dict[str, Any]]:
        async with ctx.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(OrderRow).where(OrderRow.customer_key == subject.customer_key).order_by(OrderRow.id)
                )
            ).all()
            ids = [r.id for r in rows]
            lines = await lines_of(conn, ids)
            returns = (
                await conn.execute(
                    select(OrderReturnRow).where(OrderReturnRow.order_id.in_(ids)).order_by(OrderReturnRow.id)
                )
            ).all()
            sealed = [
                Sealed(r.subject_id or "", TABLE, column, blob)
                for r in rows
                for column, blob in (("shipping_address", r.shipping_address_sealed), ("invoice", r.invoice_sealed))
            ]
            opened = await ctx.vault.decrypt_many(sealed, conn)
        by_order: dict[int, list[dict[str, Any]]] = {}
        for ret in returns:
            by_order.setdefault(ret.order_id, []).append(
                {
                    "at": ret.created_at.isoformat(),
                    "locationId": ret.location_id,
                    "lines": [{"orderLineId": line, "quantity": qty} for line, qty in ret.lines],
                    "refund": _money(ret.refund),
                }
            )
        return [
            {
                "number": order_number(r.id),
                "status": r.status,
                "channel": r.channel_code,
                "placedAt": r.placed_at.isoformat(),
                "fulfillmentMethod": r.fulfillment_method,
                "pickupLocationId": r.pickup_location_id,
                "shippingAddress": _opened(opened[2 * n]),
                "invoice": _opened(opened[2 * n + 1]),
                "currency": r.currency,
                "subtotal": _money(r.subtotal),
                "discountTotal": _money(r.discount_total),
                "total": _money(r.total),
                "taxTotal": _money(r.tax_total),
                "discountCodes": list(r.discount_codes or ()),
                "payment": {
                    "method": r.payment_method,
                    "status": r.payment_status,
                    "amount": _money(r.total),
                    "refunded": _money(r.amount_refunded),
                },
                "loyaltyPoints": {"earned": r.loyalty_points_earned, "redeemed": r.loyalty_points_redeemed},
                "lines": [
                    {
                        "sku": line.sku,
                        "name": line.name,
                        "quantity": line.quantity,
                        "quantityReturned": line.quantity_returned,
                        "unitPrice": _money(line.unit_price),
                        "total": _money(line.total),
                        "taxRate": _money(line.tax_rate),
                        "taxAmount": _money(line.tax_amount),
                    }
                    for line in lines.get(r.id, [])
                ],
                "returns": by_order.get(r.id, []),
            }
            for n, r in enumerate(rows)
        ]

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        return (await self.erase_many(ctx, [subject]))[subject.subject_id]

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        """The orders stay, as nobody's: the customer reference goes, the idempotency scope too."""
        by_key = {s.customer_key: s for s in subjects}
        found: dict[str, list[Retained]] = {s.subject_id: [] for s in subjects}
        async with writer(ctx.engine).begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        OrderRow.id,
                        OrderRow.customer_key,
                        _accounted_at().label("accounted_at"),
                        OrderRow.invoice_sealed,
                    ).where(OrderRow.customer_key.in_(list(by_key)))
                )
            ).all()
            if rows:
                await conn.execute(
                    update(OrderRow)
                    .where(OrderRow.id == bindparam("order_id"))
                    .values(customer_key=None, owner_key=bindparam("owner")),
                    [{"order_id": r.id, "owner": f"erased:{r.id}"} for r in rows],
                )
        last: dict[int, datetime] = {}
        last_invoice: dict[int, datetime] = {}
        for r in rows:
            last[r.customer_key] = max(last.get(r.customer_key, r.accounted_at), r.accounted_at)
            if r.invoice_sealed is not None:
                last_invoice[r.customer_key] = max(last_invoice.get(r.customer_key, r.accounted_at), r.accounted_at)
        for key, at in last.items():
            found[by_key[key].subject_id].append(ctx.retained("orders", at))
        for key, at in last_invoice.items():
            found[by_key[key].subject_id].append(ctx.retained("invoices", at))
        return found

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """Invoice details past the accounting period: their accounting keys shredded; orders nobody
        owns any more (erased or guest) past it: deleted with their lines and returns. Both counted
        from each order's latest accounting event (`_accounted_at`)."""
        invoices_period = ctx.retention.period("invoices")
        orders_period = ctx.retention.period("orders")
        now = ctx.clock.now()
        async with writer(ctx.engine).begin() as conn:
            invoiced = (
                await conn.execute(
                    select(OrderRow.subject_id, func.max(_accounted_at()), func.count())
                    .where(OrderRow.invoice_sealed.is_not(None), OrderRow.subject_id.is_not(None))
                    .group_by(OrderRow.subject_id)
                )
            ).all()
            due = [(str(s), int(n)) for s, at, n in invoiced if invoices_period.until(at) <= now]
            ownerless = (
                await conn.execute(select(OrderRow.id, _accounted_at()).where(OrderRow.customer_key.is_(None)))
            ).all()
            old = [order_id for order_id, at in ownerless if orders_period.until(at) <= now]
            if not dry_run:
                subjects = [s for s, _ in due]
                for start in range(0, len(subjects), 500):
                    await ctx.vault.shred_accounting(conn, subjects[start : start + 500])
                    await conn.execute(
                        update(OrderRow)
                        .where(OrderRow.subject_id.in_(subjects[start : start + 500]))
                        .values(invoice_sealed=None)
                    )
                for start in range(0, len(old), 500):
                    await conn.execute(delete(OrderRow).where(OrderRow.id.in_(old[start : start + 500])))
        return {"invoices": sum(n for _, n in due), "orders": len(old)}
