"""Where orders meet loyalty: each order step moves points in the step's own unit of work.

- checkout holds the points to redeem with the order (`hold`); a declined payment, an abandoned
  checkout or a cancellation gives them back (`give_back`), as does a return of the whole order;
- fulfilment earns, once per order: COMPLETED for collect and till orders, SHIPPED for shipping
  (`earn`), on what was paid in money (the order's total is after the points' discount);
- a return takes back the returned share of what was earned (`reverse`); a cancelled order
  earned nothing, so there is nothing to take back.

Guest orders have no account: nothing moves. The order row keeps the net figures the API shows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from commerce.loyalty import service as loyalty
from commerce.orders.models import OrderRow
from policies.loyalty import loyalty_policy

__all__ = ["earn", "give_back", "hold", "reverse"]


def _key(row: OrderRow) -> str:
    return str(row.id)


async def hold(
    session: AsyncSession,
    order_id: int,
    customer_key: int | None,
    channel: str,
    points: int,
    now: datetime,
    actor: str | None,
) -> int:
    """Redeem `points` for the new order (raises `InsufficientPoints`, naming the input field); the
    points held, which the caller records on the order (a guest, or none asked: 0)."""
    if not points or customer_key is None:
        return 0
    return await loyalty.hold_for_checkout(
        session, customer_key, str(order_id), points, channel, now, actor=actor or "checkout"
    )


async def give_back(session: AsyncSession, row: OrderRow, now: datetime, reason: str) -> None:
    if row.customer_key is not None and row.loyalty_points_redeemed:
        await loyalty.release_hold(session, row.customer_key, _key(row), now, reason=reason)
        row.loyalty_points_redeemed = 0


async def earn(session: AsyncSession, row: OrderRow, now: datetime) -> None:
    if row.customer_key is None or row.currency != loyalty_policy().currency:
        return

    row.loyalty_points_earned = await loyalty.earn_for_order(
        session, row.customer_key, _key(row), row.channel_code, Decimal(row.total), now
    )


async def reverse(session: AsyncSession, row: OrderRow, return_key: str, now: datetime, *, whole: bool) -> None:
    """After a return is recorded on `row`: its refunds so far (`amount_refunded`) say what is owed."""
    if row.customer_key is None or not row.loyalty_points_earned:
        return
    reversal = await loyalty.reverse_for_return(
        session,
        row.customer_key,
        _key(row),
        return_key,
        Decimal(row.amount_refunded),
        Decimal(row.total),
        now,
        channel=row.channel_code,
        whole=whole,
    )
    row.loyalty_points_earned -= reversal.points + reversal.shortfall
