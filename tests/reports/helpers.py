"""Orders in every channel over two days, placed through the API, for the sales report's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commerce.customers import service as customers
from core.ids import to_global_id
from tests.orders.helpers import ADDRESS, WAREHOUSE, WAW, new_cart, placed, set_stock

REPORT = """query($from: DateTime!, $to: DateTime!, $period: ReportPeriod, $location: ID) {
  salesReport(from: $from, to: $to, period: $period, locationId: $location) {
    currency
    rows { periodStart channel orders itemsSold revenue { amount currency } discounts { amount }
           returns { amount } averageOrderValue { amount } clickAndCollectShare }
    totals { periodStart channel orders itemsSold revenue { amount } returns { amount } clickAndCollectShare }
  }
}"""


@dataclass
class Sales:
    first_day: datetime  # midnight UTC of the first day
    orders: dict[str, dict[str, Any]]  # by channel code


def midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def place_sales(gql: Any, runtime: Any, clock: Any, token_for: Any) -> Sales:
    """Day 1: web (shipped) and mobile (click & collect at ST-WAW); day 2: the ST-WAW till and the call center."""
    services = runtime.services
    engine = services.engine
    for variant in (1, 2, 3, 4):
        await set_stock(engine, variant, WAREHOUSE, 50, only_here=False)
        await set_stock(engine, variant, WAW, 50, only_here=False)
    key = await customers.register(
        engine,
        services.vault,
        services.clock,
        customers.Registration(email="ola@example.com", password="password-ola", first_name="Ola", last_name="Lis"),
    )
    clock.advance(timedelta(hours=12) - (clock.now() - midnight(clock.now())))  # noon: both days are whole
    ola = token_for("customer", subject=str(key))
    first_day = midnight(clock.now())
    orders: dict[str, dict[str, Any]] = {}
    web = {**ola, "X-Channel": "web"}
    cart = await new_cart(gql, web, [(1, 2)])
    orders["web"] = await placed(gql, web, cart, "web-1", method="SHIP_TO_ADDRESS", location=None, address=ADDRESS)
    mobile = {**ola, "X-Channel": "mobile"}
    cart = await new_cart(gql, mobile, [(2, 1)])
    orders["mobile"] = await placed(gql, mobile, cart, "mobile-1", method="CLICK_AND_COLLECT", location=WAW)
    clock.advance(timedelta(days=1))
    till = {**token_for("staff", subject="anna", location="ST-WAW"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(3, 3)])
    orders["store"] = await placed(gql, till, cart, "till-1", method="IN_STORE", location=None, payment="cash")
    agent = {**token_for("agent", subject="bob"), "X-Channel": "call-center"}
    cart = await new_cart(gql, agent, [(4, 1)], customerId=to_global_id("Customer", str(key)))
    orders["call-center"] = await placed(
        gql, agent, cart, "phone-1", method="SHIP_TO_ADDRESS", location=None, address=ADDRESS
    )
    return Sales(first_day, orders)
