"""Order emails through the API: a customer's checkout and a collect order made ready each queue
their message in the step's own transaction (read back from the outbox and opened by the vault)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from commerce.customers import service as customers
from commerce.notifications import service as notifications
from commerce.notifications.models import TABLE, EmailOutbox
from commerce.notifications.templates import money_text
from core.ids import to_global_id
from tests.orders.helpers import KRK, READ_ORDER, READY, WAW, new_cart, placed, set_stock
from tests.privacy.helpers import dpo_erase
from vault.service import Sealed

VARIANT = 1
WARSAW = ZoneInfo("Europe/Warsaw")


@pytest.fixture
async def customer_key(runtime: Any) -> int:
    services = runtime.services
    return await customers.register(
        services.engine,
        services.vault,
        services.clock,
        customers.Registration(email="ada@example.com", password="password-ada", first_name="Ada", last_name="Nowak"),
    )


@pytest.fixture
def customer(customer_key: int, token_for: Any) -> dict[str, str]:
    return dict(token_for("customer", subject=str(customer_key)))


async def outbox(runtime: Any) -> list[tuple[int, str, str, dict[str, str]]]:
    """(customer, template, language, parameters) of each queued message, its sealed parameters opened."""
    services = runtime.services
    async with services.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    EmailOutbox.customer_key,
                    EmailOutbox.subject_id,
                    EmailOutbox.template,
                    EmailOutbox.language,
                    EmailOutbox.payload_sealed,
                ).order_by(EmailOutbox.id)
            )
        ).all()
    opened = await services.vault.decrypt_many([Sealed(row[1], TABLE, "payload", row[4]) for row in rows])
    return [(row[0], row[2], row[3], json.loads(str(params))) for row, params in zip(rows, opened, strict=True)]


def test_amounts_are_written_as_polish_customers_read_them() -> None:
    assert money_text(Decimal("129.99"), "PLN") == "129,99 zł"
    assert money_text(Decimal("1234567.5"), "PLN") == "1 234 567,50 zł"
    assert money_text(Decimal("-5.1"), "PLN") == "-5,10 zł"
    assert money_text(Decimal("12.5"), "EUR") == "12,50 EUR"


def shown(amount: str) -> str:
    """An order's total as its email shows it ("129,99 zł")."""
    whole, fraction = f"{Decimal(amount):.2f}".split(".")
    return f"{int(whole):,}".replace(",", " ") + f",{fraction} zł"


async def test_a_customers_checkout_queues_one_confirmation_with_its_number_and_total(
    gql: Any, runtime: Any, engine: Any, customer: Any, customer_key: int
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 2)]), "k1")
    queued = await outbox(runtime)
    expected = {"order_number": order["number"], "total": shown(order["total"]["amount"])}
    assert queued == [(customer_key, "order_confirmation", "pl", expected)]
    assert expected["total"].endswith(" zł") and "," in expected["total"]


async def test_a_retried_checkout_queues_no_second_confirmation(
    gql: Any, runtime: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    first = await placed(gql, customer, cart, "same-key")
    again = await placed(gql, customer, cart, "same-key")
    assert again["id"] == first["id"]
    assert [template for _, template, _, _ in await outbox(runtime)] == ["order_confirmation"]


async def test_the_confirmation_is_in_the_language_the_checkout_asked_for(
    gql: Any, runtime: Any, engine: Any, customer: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    english = {**customer, "Accept-Language": "en-GB,en;q=0.9,pl;q=0.5"}
    await placed(gql, english, await new_cart(gql, customer, [(VARIANT, 1)]), "en")
    await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "default")
    assert [language for _, _, language, _ in await outbox(runtime)] == ["en", "pl"]


async def test_a_guest_checkout_queues_nothing(
    gql: Any, runtime: Any, engine: Any, customer: Any, customer_key: int
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    guest = await placed(gql, {}, await new_cart(gql, {}, [(VARIANT, 1)]), "guest")
    theirs = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "customer")
    assert guest["status"] == theirs["status"] == "PLACED"
    queued = await outbox(runtime)  # the customer's only: a guest has no account to write to
    assert [(key, params["order_number"]) for key, _, _, params in queued] == [(customer_key, theirs["number"])]


async def test_a_sale_at_the_till_queues_nothing(
    gql: Any, runtime: Any, engine: Any, customer_key: int, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, KRK, 3)
    till = {**token_for("staff", subject="anna", location="ST-KRK"), "X-Channel": "store"}
    cart = await new_cart(gql, till, [(VARIANT, 1)], customerId=to_global_id("Customer", customer_key))
    sale = await placed(gql, till, cart, "till", method="IN_STORE", location=None, payment="cash")
    assert sale["status"] == "COMPLETED"
    web = {**token_for("customer", subject=str(customer_key)), "X-Channel": "web"}
    order = await placed(gql, web, await new_cart(gql, web, [(VARIANT, 1)]), "web", location=KRK)
    queued = await outbox(runtime)  # the web order's only: the till hands its receipt over
    assert [params["order_number"] for _, _, _, params in queued] == [order["number"]]


async def test_a_click_and_collect_order_made_ready_names_its_store_and_the_hold_date(
    gql: Any, runtime: Any, engine: Any, customer: Any, customer_key: int, token_for: Any, clock: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "cc")
    staff = token_for("staff", subject="anna", location="ST-WAW")
    ready = (await gql.data(READY, {"id": order["id"]}, headers=staff))["orderMarkReadyForPickup"]
    assert ready["userErrors"] == [] and ready["order"]["status"] == "READY_FOR_PICKUP"
    held_until = (clock.now() + timedelta(days=runtime.settings.pickup_hold_days)).astimezone(WARSAW).date()
    expected = {"order_number": order["number"], "store": "Warszawa Złote Tarasy", "collect_by": held_until.isoformat()}
    assert (await outbox(runtime))[1:] == [(customer_key, "ready_for_pickup", "pl", expected)]


async def test_a_reserve_and_collect_order_made_ready_is_to_be_collected_by_its_reservations_end(
    gql: Any, runtime: Any, engine: Any, customer: Any, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    cart = await new_cart(gql, customer, [(VARIANT, 1)])
    order = await placed(gql, customer, cart, "rc", method="RESERVE_AND_COLLECT", payment="cash_on_pickup")
    staff = token_for("staff", subject="anna", location="ST-WAW")
    ready = (await gql.data(READY, {"id": order["id"]}, headers=staff))["orderMarkReadyForPickup"]
    assert ready["userErrors"] == []
    reserved_until = datetime.fromisoformat(order["reservedUntil"])
    [(_, template, _, params)] = (await outbox(runtime))[1:]
    assert template == "ready_for_pickup" and params["store"] == "Warszawa Złote Tarasy"
    assert params["collect_by"] == reserved_until.astimezone(WARSAW).date().isoformat()
    assert params["collect_by"] != (datetime.fromisoformat(order["placedAt"]) + timedelta(days=7)).date().isoformat()


async def test_an_erased_customers_order_is_made_ready_and_nothing_is_queued(
    gql: Any, runtime: Any, engine: Any, customer: Any, customer_key: int, token_for: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "gone")
    assert [template for _, template, _, _ in await outbox(runtime)] == ["order_confirmation"]
    erased = await dpo_erase(gql, token_for("dpo", subject="dpo-1"), to_global_id("Customer", customer_key))
    assert erased["userErrors"] == [] and erased["request"]["status"] == "COMPLETED"
    staff = token_for("staff", subject="anna", location="ST-WAW")
    ready = (await gql.data(READY, {"id": order["id"]}, headers=staff))["orderMarkReadyForPickup"]
    assert ready["userErrors"] == [] and ready["order"]["status"] == "READY_FOR_PICKUP"
    assert await outbox(runtime) == []  # the erasure took the pending confirmation; nothing new since


async def test_while_an_erasure_runs_nothing_is_queued_for_the_person(
    gql: Any, runtime: Any, engine: Any, customer: Any, customer_key: int, token_for: Any, monkeypatch: Any
) -> None:
    """An erasure stopped before it reached the orders (nor shredded the key): the person is erased
    all the same, from the moment it began."""
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "midway")
    assert [template for _, template, _, _ in await outbox(runtime)] == ["order_confirmation"]
    requests = runtime.services.requests
    orders = next(source for source in requests.registry.sources if source.name == "orders")

    async def power_cut(*_: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(orders, "erase_many", power_cut)
    await gql.post(
        "mutation($id: ID!) { dataSubjectErase(customerId: $id) { request { status } } }",
        {"id": to_global_id("Customer", customer_key)},
        headers=token_for("dpo", subject="dpo-1"),
    )
    [stopped] = await requests.unfinished()
    staff = token_for("staff", subject="anna", location="ST-WAW")
    ready = (await gql.data(READY, {"id": order["id"]}, headers=staff))["orderMarkReadyForPickup"]
    assert ready["userErrors"] == [] and ready["order"]["status"] == "READY_FOR_PICKUP"
    assert "ready_for_pickup" not in [template for _, template, _, _ in await outbox(runtime)]
    monkeypatch.undo()
    assert (await requests.run(stopped)).status == "COMPLETED"


async def test_an_email_that_cannot_be_queued_takes_the_step_back_with_it(
    gql: Any, runtime: Any, engine: Any, customer: Any, token_for: Any, monkeypatch: Any
) -> None:
    await set_stock(engine, VARIANT, WAW, 5)
    order = await placed(gql, customer, await new_cart(gql, customer, [(VARIANT, 1)]), "atomic")

    async def broken(conn: Any, vault: Any, clock: Any, *, customer_key: int, **params: str) -> bool:
        """The message is written, then something fails before the step commits."""
        await notifications.enqueue(
            conn, vault, clock, customer_key=customer_key, template="ready_for_pickup", params=params
        )
        raise RuntimeError("the outbox write failed")

    monkeypatch.setattr(notifications, "notify_ready_for_pickup", broken)
    staff = token_for("staff", subject="anna", location="ST-WAW")
    failed = await gql.execute(READY, {"id": order["id"]}, headers=staff)
    assert failed["errors"] and not (failed.get("data") or {}).get("orderMarkReadyForPickup")
    read = await gql.data(READ_ORDER, {"id": order["id"]}, headers=token_for("admin"))
    assert read["order"]["status"] == "PLACED"  # neither the step nor its half-written email committed
    assert [template for _, template, _, _ in await outbox(runtime)] == ["order_confirmation"]
    monkeypatch.undo()
    ready = (await gql.data(READY, {"id": order["id"]}, headers=staff))["orderMarkReadyForPickup"]
    assert ready["userErrors"] == [] and ready["order"]["status"] == "READY_FOR_PICKUP"
    assert [template for _, template, _, _ in await outbox(runtime)] == ["order_confirmation", "ready_for_pickup"]
