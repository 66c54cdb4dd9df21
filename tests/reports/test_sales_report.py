"""The sales report across channels, per period, as an admin and as the staff of one store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from core.ids import to_global_id
from tests.orders.helpers import KRK, RETURN, WAW, location_id
from tests.reports.helpers import REPORT, place_sales


def _variables(sales: Any, days: int = 2, **extra: Any) -> dict[str, Any]:
    start = sales.first_day
    return {"from": start.isoformat(), "to": (start + timedelta(days=days)).isoformat(), **extra}


async def test_admin_sees_each_channel_per_day_with_the_orders_own_amounts(gql, runtime, clock, token_for):
    sales = await place_sales(gql, runtime, clock, token_for)
    report = (await gql.data(REPORT, _variables(sales, period="DAY"), headers=token_for("admin")))["salesReport"]
    assert report["currency"] == "PLN"
    by_key = {(row["periodStart"][:10], row["channel"]): row for row in report["rows"]}
    day1, day2 = sales.first_day.date().isoformat(), (sales.first_day + timedelta(days=1)).date().isoformat()
    assert set(by_key) == {(day1, "web"), (day1, "mobile"), (day2, "store"), (day2, "call-center")}
    for (_, channel), row in by_key.items():
        order = sales.orders[channel]
        assert row["orders"] == 1
        assert row["itemsSold"] == sum(line["quantity"] for line in order["lines"])
        assert row["revenue"] == {"amount": order["total"]["amount"], "currency": "PLN"}
        assert row["averageOrderValue"]["amount"] == order["total"]["amount"]
        assert Decimal(row["clickAndCollectShare"]) == (1 if channel == "mobile" else 0)
    totals = {row["channel"]: row for row in report["totals"]}
    assert {channel: row["orders"] for channel, row in totals.items()} == {
        "web": 1,
        "mobile": 1,
        "store": 1,
        "call-center": 1,
    }


async def test_a_week_and_a_month_gather_both_days_and_returns_show(gql, runtime, clock, token_for):
    sales = await place_sales(gql, runtime, clock, token_for)
    till = {**token_for("staff", subject="anna", location="ST-WAW"), "X-Channel": "store"}
    store_order = sales.orders["store"]
    line = store_order["lines"][0]
    returned = await gql.data(
        RETURN,
        {"id": store_order["id"], "lines": [{"orderLineId": line["id"], "quantity": 1}], "location": location_id(WAW)},
        headers=till,
    )
    assert returned["orderReturnLines"]["userErrors"] == []
    refund = Decimal(returned["orderReturnLines"]["order"]["payment"]["refunded"]["amount"])
    assert refund > 0
    for period in ("WEEK", "MONTH"):
        report = (await gql.data(REPORT, _variables(sales, period=period), headers=token_for("admin")))["salesReport"]
        starts = {row["periodStart"] for row in report["rows"]}
        assert len(starts) <= 2  # two days fall in at most two weeks or months
        store = [row for row in report["rows"] if row["channel"] == "store"]
        assert sum(Decimal(row["returns"]["amount"]) for row in store) == refund
        assert sum(row["orders"] for row in report["rows"]) == 4


async def test_staff_see_only_their_own_store_and_nobody_else_sees_the_report(gql, runtime, clock, token_for):
    sales = await place_sales(gql, runtime, clock, token_for)
    staff_waw = token_for("staff", subject="anna", location="ST-WAW")
    own = await gql.data(REPORT, _variables(sales, location=location_id(WAW)), headers=staff_waw)
    assert {row["channel"] for row in own["salesReport"]["rows"]} == {"mobile", "store"}  # collected or sold at WAW
    for headers, variables in [
        (staff_waw, _variables(sales, location=location_id(KRK))),  # another store
        (staff_waw, _variables(sales)),  # every store
        (token_for("customer", subject="1"), _variables(sales)),
        (token_for("agent"), _variables(sales)),
        ({}, _variables(sales)),
    ]:
        body = await gql.execute(REPORT, variables, headers=headers)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] in (["FORBIDDEN"], ["UNAUTHENTICATED"])


async def test_a_backwards_or_too_long_range_is_refused_with_the_field(gql, token_for):
    admin = token_for("admin")
    for start, end in [
        ("2026-02-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
        ("2020-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
    ]:
        body = await gql.execute(REPORT, {"from": start, "to": end}, headers=admin)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": ["to"]}
    bad = await gql.execute(
        REPORT,
        {
            "from": "2026-01-01T00:00:00+00:00",
            "to": "2026-02-01T00:00:00+00:00",
            "location": to_global_id("Product", "1"),
        },
        headers=admin,
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
