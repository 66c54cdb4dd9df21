"""`salesReport`: one view of sales across channels, computed by the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from commerce.orders import report
from schema.errors import bad_input
from schema.money import Money
from schema.node import decode_int_id

__all__ = ["ReportQuery"]

MAX_RANGE = timedelta(days=3 * 366)  # a request may ask for three years at most


@strawberry.enum
class ReportPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.type
class SalesReportRow:
    period_start: datetime
    channel: str = strawberry.field(description="The channel's code: web, mobile, store, call-center.")
    orders: int
    items_sold: int
    revenue: Money
    discounts: Money
    returns: Money
    average_order_value: Money
    click_and_collect_share: Decimal = strawberry.field(description="Of orders, 0..1.")

    @classmethod
    def of(cls, row: report.SalesRow, currency: str) -> SalesReportRow:
        return cls(
            period_start=row.period_start,
            channel=row.channel,
            orders=row.orders,
            items_sold=row.items_sold,
            revenue=Money(amount=row.revenue, currency=currency),
            discounts=Money(amount=row.discounts, currency=currency),
            returns=Money(amount=row.returns, currency=currency),
            average_order_value=Money(amount=row.average_order_value, currency=currency),
            click_and_collect_share=row.click_and_collect_share,
        )


@strawberry.type
class SalesReport:
    currency: str
    rows: list[SalesReportRow]
    totals: list[SalesReportRow] = strawberry.field(description="Per channel over the whole range.")


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="Orders, items, revenue, discounts, returns, average order value and click & collect share "
        "per channel and period, in the channel's currency. Admins: every store; staff: their own store only."
    )
    async def sales_report(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        period: ReportPeriod = ReportPeriod.DAY,
        location_id: strawberry.ID | None = None,
    ) -> SalesReport:
        if to <= from_:
            raise bad_input("`to` must be after `from`.", ["to"])
        if to - from_ > MAX_RANGE:
            raise bad_input("A report covers three years at most.", ["to"])
        currency = info.context.channel.currency
        found = await report.sales_report(
            info.context.services.engine,
            start=from_,
            end=to,
            period=report.Period(period.value),
            currency=currency,
            location_id=None if location_id is None else decode_int_id(location_id, "Location", "locationId"),
        )
        return SalesReport(
            currency=currency,
            rows=[SalesReportRow.of(row, currency) for row in found.rows],
            totals=[SalesReportRow.of(row, currency) for row in found.totals],
        )
