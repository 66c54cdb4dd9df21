"""Sales per channel and period, grouped by the database on the orders' `placed_at` index.

Never loads orders into Python: one grouped statement returns one row per period and channel
(units sold are kept on the order, so its lines need no join). An order counts in the period it was placed; its returns
(the refunds of returned lines) count in that same period, so a period's figures do not change
shape when a return comes later. Cancelled orders and checkouts that never completed count nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.orders import records as r
from commerce.orders.models import OrderRow

__all__ = ["Period", "SalesReport", "SalesRow", "sales_report"]

SOLD = tuple(s for s in r.VISIBLE if s != r.CANCELLED)
CENT = Decimal("0.01")


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, from Monday
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class SalesRow:
    period_start: datetime
    channel: str
    orders: int
    items_sold: int
    revenue: Decimal  # gross, after discounts
    discounts: Decimal
    returns: Decimal
    collected: int  # click & collect and reserve & collect orders

    @property
    def average_order_value(self) -> Decimal:
        return (self.revenue / self.orders).quantize(CENT, ROUND_HALF_UP) if self.orders else Decimal("0.00")

    @property
    def click_and_collect_share(self) -> Decimal:
        return (
            (Decimal(self.collected) / self.orders).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            if self.orders
            else Decimal(0)
        )


@dataclass(frozen=True, slots=True)
class SalesReport:
    currency: str
    rows: list[SalesRow]  # per period and channel, oldest first
    totals: list[SalesRow]  # per channel over the whole range (period_start = the range's start)


def _bucket(dialect: str, period: Period) -> ColumnElement[Any]:
    placed = OrderRow.placed_at
    if dialect == "postgresql":
        return func.date_trunc(period.value, func.timezone("UTC", placed))
    pattern = "%Y-%m-01 00:00:00" if period is Period.MONTH else "%Y-%m-%d 00:00:00"
    if period is Period.WEEK:  # the Sunday on or after, less six days: the week's Monday
        return func.strftime(pattern, placed, literal_column("'weekday 0'"), literal_column("'-6 days'"))
    return func.strftime(pattern, placed)


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def sales_report(
    engine: AsyncEngine,
    *,
    start: datetime,
    end: datetime,
    period: Period,
    currency: str,
    location_id: int | None = None,
) -> SalesReport:
    """Orders placed in [start, end), in `currency`; only those of one store when `location_id` is given."""
    bucket = _bucket(engine.dialect.name, period).label("bucket")
    where: list[ColumnElement[bool]] = [
        OrderRow.placed_at >= start,
        OrderRow.placed_at < end,
        OrderRow.status.in_(SOLD),
        OrderRow.currency == currency,
    ]
    if location_id is not None:
        where.append(OrderRow.pickup_location_id == location_id)
    collected = func.sum(case((OrderRow.fulfillment_method.in_(r.COLLECT), 1), else_=0))
    orders = (
        select(
            bucket,
            OrderRow.channel_code,
            func.count(),
            func.sum(OrderRow.total),
            func.sum(OrderRow.discount_total),
            func.sum(OrderRow.amount_refunded),
            collected,
            func.sum(OrderRow.items_count),
        )
        .where(*where)
        .group_by(bucket, OrderRow.channel_code)
    )
    async with engine.connect() as conn:
        order_rows = (await conn.execute(orders)).all()
    rows = sorted(
        (
            SalesRow(
                period_start=_as_utc(b),
                channel=channel,
                orders=int(count),
                items_sold=int(items or 0),
                revenue=Decimal(revenue or 0).quantize(CENT),
                discounts=Decimal(discounts or 0).quantize(CENT),
                returns=Decimal(returns or 0).quantize(CENT),
                collected=int(collect or 0),
            )
            for b, channel, count, revenue, discounts, returns, collect, items in order_rows
        ),
        key=lambda row: (row.period_start, row.channel),
    )
    return SalesReport(currency, rows, _totals(rows, _as_utc(start)))


def _totals(rows: Sequence[SalesRow], start: datetime) -> list[SalesRow]:
    channels = sorted({row.channel for row in rows})
    return [
        SalesRow(
            period_start=start,
            channel=channel,
            orders=sum(x.orders for x in rows if x.channel == channel),
            items_sold=sum(x.items_sold for x in rows if x.channel == channel),
            revenue=sum((x.revenue for x in rows if x.channel == channel), Decimal("0.00")),
            discounts=sum((x.discounts for x in rows if x.channel == channel), Decimal("0.00")),
            returns=sum((x.returns for x in rows if x.channel == channel), Decimal("0.00")),
            collected=sum(x.collected for x in rows if x.channel == channel),
        )
        for channel in channels
    ]
