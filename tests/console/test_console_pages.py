"""The console in a real browser: each page shows what the operator's token may see, and no more."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from commerce.orders.models import OrderRow
from core.db import writer
from tests.console.browser import Browser, browser_page, screenshot
from tests.customers.helpers import register
from tests.live_server import serving
from tests.orders.helpers import PICKUP, READ_ORDER, READY, WAW, new_cart, placed, set_stock, stock_of
from tests.reports.helpers import place_sales

LOOKUP_ZOFIA = '{ customerByEmail(email: "zofia@example.com") { id } }'


async def sign_in(browser: Browser, token: str) -> None:
    page = browser.page
    await page.goto("/console/")
    await page.fill("#token", token)
    await page.click("#sign-in button[type=submit]")
    await page.locator("#signed-in-as").wait_for()


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def test_admin_sees_the_sales_report_drawn_from_orders_in_every_channel(
    gql: Any, runtime: Any, clock: Any, token_for: Any, request: pytest.FixtureRequest
) -> None:
    sales = await place_sales(gql, runtime, clock, token_for)
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(token_for("admin", subject="ada-admin")))
        page = browser.page
        await page.goto("/console/reports")
        await page.locator("#table table").wait_for()
        await page.fill("#from", sales.first_day.date().isoformat())
        await page.fill("#to", (sales.first_day + timedelta(days=1)).date().isoformat())
        await page.click("#report-form button[type=submit]")
        await page.locator("#table td", has_text="call-center").first.wait_for()
        labels = await page.evaluate("Chart.getChart('revenue').data.datasets.map((d) => d.label)")
        revenue = await page.evaluate(
            "Chart.getChart('revenue').data.datasets.map((d) => d.data.reduce((a, b) => a + b, 0))"
        )
        table_text = await page.locator("#table").inner_text()
        await screenshot(browser, request)
    assert sorted(labels) == ["call-center", "mobile", "store", "web"]
    expected = sum(float(order["total"]["amount"]) for order in sales.orders.values())
    assert round(sum(revenue), 2) == round(expected, 2)
    assert sales.orders["web"]["total"]["amount"] in table_text
    assert browser.blocked == [] and browser.csp_violations == []


async def test_staff_hand_over_a_pickup_at_their_store(
    gql: Any, runtime: Any, engine: Any, token_for: Any, request: pytest.FixtureRequest
) -> None:
    await set_stock(engine, 2, WAW, 5)
    cart = await new_cart(gql, {}, [(2, 1)])
    order = await placed(gql, {}, cart, "guest-pickup", method="CLICK_AND_COLLECT", location=WAW)
    staff = token_for("staff", subject="anna", location="ST-WAW")
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(staff))
        page = browser.page
        await page.goto("/console/store")
        waiting = page.locator("#waiting tr", has_text=order["number"])
        await waiting.get_by_role("button", name="Mark ready").click()
        ready = page.locator("#ready tr", has_text=order["number"])
        await ready.get_by_role("button", name="Hand over").click()
        await page.locator("#message .ok", has_text="handed over").wait_for()
        await screenshot(browser, request)
    status = (await gql.data(READ_ORDER, {"id": order["id"]}, headers=token_for("admin")))["order"]["status"]
    assert status == "COMPLETED"


async def test_staff_take_a_return_of_a_collected_order_into_their_stores_stock(
    gql: Any, runtime: Any, engine: Any, token_for: Any, request: pytest.FixtureRequest
) -> None:
    await set_stock(engine, 2, WAW, 5)
    order = await placed(gql, {}, await new_cart(gql, {}, [(2, 2)]), "collected", location=WAW)
    staff = token_for("staff", subject="anna", location="ST-WAW")
    await gql.data(READY, {"id": order["id"]}, headers=staff)
    await gql.data(PICKUP, {"id": order["id"]}, headers=staff)
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(staff))
        page = browser.page
        await page.goto("/console/store")
        form = page.locator("#returns form", has_text=order["number"])
        await form.get_by_label(f"Return quantity of {order['lines'][0]['name']}").fill("1")
        await form.get_by_role("button", name=f"Take return of {order['number']}").click()
        await page.locator("#message .ok", has_text="taken").wait_for()
        await screenshot(browser, request)
    after = (await gql.data(READ_ORDER, {"id": order["id"]}, headers=token_for("admin")))["order"]
    assert after["status"] == "PARTIALLY_RETURNED" and after["lines"][0]["quantityReturned"] == 1
    assert await stock_of(engine, 2, WAW) == (4, 0)  # 5, 2 handed over, 1 back
    assert browser.csp_violations == [] and browser.console_errors == []


async def test_a_pickup_still_waiting_shows_however_many_orders_the_store_completed_since(
    gql: Any, runtime: Any, engine: Any, token_for: Any, request: pytest.FixtureRequest
) -> None:
    """The page read the store's 100 newest orders of every status it shows and sorted them into its
    lists: a pickup placed before 100 others were completed fell off "waiting" and "ready" unseen."""
    await set_stock(engine, 2, WAW, 5)
    waiting = await placed(gql, {}, await new_cart(gql, {}, [(2, 1)]), "old-waiting", location=WAW)
    ready = await placed(gql, {}, await new_cart(gql, {}, [(2, 1)]), "old-ready", location=WAW)
    staff = token_for("staff", subject="anna", location="ST-WAW")
    await gql.data(READY, {"id": ready["id"]}, headers=staff)
    await _completed_since(engine, 100)
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(staff))
        page = browser.page
        await page.goto("/console/store")
        await page.locator("#returns form").first.wait_for()
        waiting_text = await page.locator("#waiting").inner_text()
        ready_text = await page.locator("#ready").inner_text()
        await screenshot(browser, request)
    assert waiting["number"] in waiting_text
    assert ready["number"] in ready_text


async def _completed_since(engine: Any, count: int) -> None:
    """`count` newer collected orders at ST-WAW (copies of the newest order, COMPLETED)."""
    columns = [c for c in OrderRow.__table__.columns if c.name != "id"]
    async with writer(engine).begin() as conn:
        newest = (await conn.execute(select(*columns).order_by(OrderRow.id.desc()).limit(1))).one()._asdict()
        rows = [newest | {"idempotency_key": f"done-{n}", "status": "COMPLETED"} for n in range(count)]
        await conn.execute(insert(OrderRow), rows)


@pytest.mark.parametrize("role", ["agent", "customer"])
async def test_an_operator_without_the_role_gets_the_refusal_never_the_data(
    gql: Any, runtime: Any, clock: Any, token_for: Any, role: str, request: pytest.FixtureRequest
) -> None:
    sales = await place_sales(gql, runtime, clock, token_for)
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(token_for(role, subject="1")))
        page = browser.page
        await page.goto("/console/reports")
        await page.fill("#from", sales.first_day.date().isoformat())
        await page.click("#report-form button[type=submit]")
        alert = page.locator("#message .error")
        await alert.wait_for()
        text = await alert.inner_text()
        body = await page.locator("main").inner_text()
        await screenshot(browser, request)
    assert "FORBIDDEN" in text
    assert sales.orders["web"]["number"] not in body and "call-center" not in body


async def test_dpo_exports_then_erases_a_person_from_the_console(
    gql: Any, runtime: Any, token_for: Any, request: pytest.FixtureRequest
) -> None:
    person = await register(gql, "zofia@example.com", first="Zofia", last="Kowalska")
    async with serving(runtime) as port, browser_page(port) as browser:
        await sign_in(browser, bearer(token_for("dpo", subject="dpo-1")))
        page = browser.page
        await page.goto("/console/dpo")
        await page.fill("#email", "zofia@example.com")
        await page.click("#find button[type=submit]")
        async with page.expect_download() as downloading:
            await page.get_by_role("button", name="Export (download JSON)").click()
        exported = json.loads(Path(await (await downloading.value).path()).read_text())
        await page.get_by_role("button", name="Erase…").click()
        await page.locator("#kept td", has_text="retain").first.wait_for()
        await page.fill("#confirm-email", "someone-else@example.com")  # a wrong confirmation erases nothing
        await page.click("#erase button[type=submit]")
        await page.locator("#erase-result .error").wait_for()
        still_there = await gql.data(LOOKUP_ZOFIA, headers=token_for("agent"))
        await page.fill("#confirm-email", "zofia@example.com")
        await page.click("#erase button[type=submit]")
        await page.locator("#erase-result .ok", has_text="completed").wait_for()
        await page.locator("#requests td", has_text="erasure").first.wait_for()
        requests_text = await page.locator("#requests").inner_text()
        await screenshot(browser, request)
    assert "zofia@example.com" in json.dumps(exported)
    assert still_there["customerByEmail"]["id"] == person["id"]
    gone = await gql.data(LOOKUP_ZOFIA, headers=token_for("agent"))
    assert gone["customerByEmail"] is None
    assert "export" in requests_text and "erasure" in requests_text and "completed" in requests_text
