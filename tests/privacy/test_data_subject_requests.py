"""The DPO exports and erases a person through the API: complete, within the law, provable."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from sqlalchemy import insert, select

from commerce.catalog import service as catalog
from commerce.customers.models import SignInThrottle
from commerce.customers.service import LOCK_AFTER_FAILURES, subjects_by_ids
from commerce.loyalty import service as loyalty
from commerce.pricing.promotion_models import PromotionRow, PromotionUsage
from core.clock import FrozenClock
from core.db import writer
from core.ids import from_global_id, to_global_id
from gateway.runtime import Runtime
from tests.customers.helpers import SIGN_IN, register, sign_in
from tests.orders import helpers as orders
from tests.privacy.helpers import EXTEND, LIST, dpo_erase, dpo_export, find_in_database
from vault.audit_models import AuditRecord
from vault.requests.export import export_schema

EMAIL = "ewa.kowalska@example.com"
PHONE = "+48 601 234 567"
ADDRESS = {
    "name": "Ewelina Kowalska",
    "line1": "Ulica Marszalkowska 140",
    "postalCode": "00-061",
    "city": "Warszawa",
    "country": "PL",
}
CONSENT = """mutation($p: String!, $g: Boolean!) { consentSet(purpose: $p, granted: $g) { userErrors { code } } }"""
ADD_ADDRESS = """mutation($a: AddressInput!) { customerAddressAdd(input: $a) { userErrors { code } } }"""
CART_CREATE = "mutation($v: ID!) { cartCreate(lines: [{variantId: $v, quantity: 2}]) { cart { id } } }"
ATTACH = "mutation($id: ID!) { cartAttachToCustomer(cartId: $id) { cart { id } userErrors { code } } }"
LOOKUP = "query($e: String!) { customerByEmail(email: $e) { id firstName } }"


async def _variant(gql: Any) -> str:
    data = await gql.data("{ products(first: 1) { edges { node { variants { id } } } } }")
    return str(data["products"]["edges"][0]["node"]["variants"][0]["id"])


async def _customer_who_did_everything(gql: Any, runtime: Runtime, token_for: Any) -> dict[str, Any]:
    """Registered, consented and withdrew, an address, carts on two devices, a promotion used, looked up by an agent."""
    customer = await register(gql, EMAIL, first="Ewelina", last="Kowalska", phone=PHONE)
    me = await sign_in(gql, EMAIL)
    await gql.data(CONSENT, {"p": "MARKETING_EMAIL", "g": True}, headers=me)
    await gql.data(CONSENT, {"p": "MARKETING_EMAIL", "g": False}, headers=me)
    await gql.data(ADD_ADDRESS, {"a": ADDRESS}, headers=me)
    orders = await _orders(gql, runtime, token_for, me, customer["id"])  # their carts close at checkout
    variant = await _variant(gql)
    laptop = (await gql.data(CART_CREATE, {"v": variant}, headers=me))["cartCreate"]["cart"]["id"]
    phone_guest = (await gql.data(CART_CREATE, {"v": variant}))["cartCreate"]["cart"]["id"]  # the other device
    attached = (await gql.data(ATTACH, {"id": phone_guest}, headers=me))["cartAttachToCustomer"]
    assert attached["userErrors"] == [] and attached["cart"]["id"] == laptop
    key = int(from_global_id(customer["id"])[1])
    async with runtime.services.engine.begin() as conn:
        promotion = (await conn.execute(select(PromotionRow.id).limit(1))).scalar_one()
        await conn.execute(
            insert(PromotionUsage).values(
                promotion_id=promotion, customer_key=key, order_ref="WEB-000123", used_at=runtime.services.clock.now()
            )
        )
    agent = {**token_for("agent", subject="agent-7"), "X-Channel": "call-center"}
    assert (await gql.data(LOOKUP, {"e": EMAIL}, headers=agent))["customerByEmail"]["firstName"] == "Ewelina"
    till = {**token_for("staff", subject="staff-gdn", location="ST-GDN"), "X-Channel": "store"}
    seen = await gql.data("query($id: ID!) { customer(id: $id) { lastName } }", {"id": customer["id"]}, headers=till)
    assert seen["customer"]["lastName"] == "Kowalska"
    return {"customer": customer, "key": key, "token": me, "carts": {laptop, phone_guest}, "orders": orders}


INVOICE = {
    "companyName": "Kowalska Consulting",
    "taxId": "PL5260001246",
    "address": {**ADDRESS, "line1": "Aleje Ujazdowskie 9"},
}
CARD = "4242424242424242"


async def _orders(gql: Any, runtime: Runtime, token_for: Any, me: dict[str, str], customer_id: str) -> dict[str, Any]:
    """A web order shipped with a VAT invoice, a click & collect order collected and partly
    returned, and a sale at the till for the customer: every one through the API."""
    engine = runtime.services.engine
    for store in (orders.WAREHOUSE, orders.WAW, orders.KRK):
        await orders.set_stock(engine, 1, store, 10, only_here=False)
    web_cart = await orders.new_cart(gql, me, [(1, 1)])
    web = await gql.data(
        orders.CHECKOUT,
        {
            "input": {
                **orders.checkout_input(web_cart, "web-1", "SHIP_TO_ADDRESS", token=CARD, address=ADDRESS),
                "invoice": INVOICE,
            }
        },
        headers=me,
    )
    assert web["checkoutComplete"]["userErrors"] == [], web
    collect = await orders.placed(gql, me, await orders.new_cart(gql, me, [(1, 2)]), "collect-1", token=CARD)
    staff = {**token_for("staff", subject="staff-waw", location="ST-WAW"), "X-Channel": "store"}
    await gql.data(orders.READY, {"id": collect["id"]}, headers=staff)
    await gql.data(orders.PICKUP, {"id": collect["id"]}, headers=staff)
    returned = await gql.data(
        orders.RETURN,
        {
            "id": collect["id"],
            "lines": [{"orderLineId": collect["lines"][0]["id"], "quantity": 1}],
            "location": orders.location_id(orders.WAW),
        },
        headers=staff,
    )
    assert returned["orderReturnLines"]["userErrors"] == []
    till = {**token_for("staff", subject="staff-krk", location="ST-KRK"), "X-Channel": "store"}
    till_cart = await orders.new_cart(gql, till, [(1, 1)], customerId=customer_id)
    at_till = await orders.placed(gql, till, till_cart, "till-1", method="IN_STORE", location=None, payment="cash")
    redeem_input = {**orders.checkout_input(await orders.new_cart(gql, me, [(1, 1)]), "redeem-1", token=CARD)}
    redeemed = await gql.data(orders.CHECKOUT, {"input": {**redeem_input, "loyaltyPointsToRedeem": 5}}, headers=me)
    assert redeemed["checkoutComplete"]["userErrors"] == [], redeemed
    card = await gql.data("{ me { loyalty { cardNumber balance } } }", headers=me)
    return {
        "web": web["checkoutComplete"]["order"],
        "collect": collect,
        "till": at_till,
        "redeemed": redeemed["checkoutComplete"]["order"],
        "card": card["me"]["loyalty"]["cardNumber"],
    }


async def test_the_export_holds_everything_about_the_person_and_validates_against_its_schema(gql, runtime, token_for):
    person = await _customer_who_did_everything(gql, runtime, token_for)
    dpo = token_for("dpo", subject="dpo-1")
    payload = await dpo_export(gql, dpo, person["customer"]["id"])
    assert payload["userErrors"] == []
    request = payload["request"]
    assert request["kind"] == "EXPORT" and request["status"] == "COMPLETED"
    assert request["customerId"] == person["customer"]["id"]
    document = request["export"]
    jsonschema.validate(document, export_schema())
    data = document["data"]
    assert data["profile"]["email"] == EMAIL and data["profile"]["phone"] == "+48601234567"
    assert (data["profile"]["firstName"], data["profile"]["lastName"]) == ("Ewelina", "Kowalska")
    assert data["profile"]["addresses"][0]["line1"] == ADDRESS["line1"]
    assert [(c["purpose"], c["granted"]) for c in data["consents"]] == [
        ("MARKETING_EMAIL", True),
        ("MARKETING_EMAIL", False),
    ]
    assert {c["id"] for c in data["carts"]} >= {from_global_id(c)[1] for c in person["carts"]}
    assert all(c["lines"] for c in data["carts"] if c["status"] == "active")
    assert [u["orderRef"] for u in data["promotionUsages"]] == ["WEB-000123"]
    assert {(a["actor"], a["operation"]) for a in data["accessLog"]} >= {
        ("agent-7", "query customerByEmail"),
        ("staff-gdn", "query customer"),
    }
    assert [r["kind"] for r in data["requests"]] == ["EXPORT"]
    assert sorted(data["keys"]["indexedFor"]) == ["email", "loyalty_card", "phone"]
    placed = {o["number"]: o for o in data["orders"]}
    assert set(placed) == {o["number"] for k, o in person["orders"].items() if k != "card"}
    loyalty = data["loyalty"]
    assert loyalty["cardNumber"] == person["orders"]["card"]
    assert {"EARN", "REDEEM"} <= {e["kind"] for e in loyalty["entries"]}
    assert loyalty["tier"]["name"] and loyalty["tier"]["earnedInWindow"] > 0  # the programme's profile of them
    assert isinstance(data["recommendationInputs"], list)
    web = placed[person["orders"]["web"]["number"]]
    assert web["shippingAddress"]["line1"] == ADDRESS["line1"] and web["invoice"]["taxId"] == INVOICE["taxId"]
    assert web["lines"][0]["taxRate"] and web["payment"]["method"] == "card"
    collect = placed[person["orders"]["collect"]["number"]]
    assert collect["fulfillmentMethod"] == "CLICK_AND_COLLECT" and collect["returns"][0]["lines"][0]["quantity"] == 1
    assert placed[person["orders"]["till"]["number"]]["channel"] == "store"
    assert {p["code"] for p in document["purposes"]} >= {"MARKETING_EMAIL", "profile", "consents"}
    assert {r["category"]: r["period"] for r in document["retention"]}["consents"] == "P6Y"
    assert document["subject"] == {"customerKey": person["key"], "erased": False, "erasedAt": None}


async def _offer(engine: Any, **values: Any) -> None:
    defaults = {"kind": "percentage", "product_ids": [], "category_ids": [], "channels": [], "active": True}
    async with writer(engine).begin() as conn:
        await conn.execute(insert(PromotionRow).values(**{**defaults, **values}))


async def test_the_export_holds_the_persons_current_offers_and_why_and_no_one_elses(gql, runtime, token_for):
    """Art. 15(1)(h): an offer chosen by their tier or by what they bought is a profiling result
    about them: the export says what it gives and why, in every channel, and nothing of others."""
    engine, now = runtime.services.engine, runtime.services.clock.now()
    category = (await catalog.products_by_ids(engine, [1]))[1].category_id
    assert category is not None
    category_name = (await catalog.categories_by_ids(engine, [category]))[category].name
    await _offer(engine, description="Gold: 10% off", value=Decimal(10), target_tiers=["GOLD"], channels=["store"])
    await _offer(
        engine,
        description="You liked this category: 5 PLN off",
        kind="fixed_amount",
        value=Decimal(5),
        currency="PLN",
        code="LIKED5",
        target_category_ids=[category],
        target_bought_from=now - timedelta(days=30),
        ends_at=now + timedelta(days=7),
        usage_limit=1000,
    )
    await _offer(engine, description="Silver only", value=Decimal(3), target_tiers=["SILVER"])
    person = await register(gql, "offered@example.com")
    me = await sign_in(gql, "offered@example.com")
    await gql.data(CONSENT, {"p": "PERSONALIZATION", "g": True}, headers=me)
    await orders.set_stock(engine, 1, orders.WAW, 5, only_here=False)
    await orders.placed(gql, me, await orders.new_cart(gql, me, [(1, 1)]), "offered-1")
    async with writer(engine).begin() as conn:
        await loyalty.earn_for_order(conn, int(from_global_id(person["id"])[1]), "big", "store", Decimal(6000), now)
    other = await register(gql, "not.offered@example.com")
    dpo = token_for("dpo", subject="dpo-1")

    document = (await dpo_export(gql, dpo, person["id"]))["request"]["export"]
    jsonschema.validate(document, export_schema())
    offers = {o["promotion"]: o for o in document["data"]["personalOffers"]}
    assert set(offers) == {"Gold: 10% off", "You liked this category: 5 PLN off"}
    gold, liked = offers["Gold: 10% off"], offers["You liked this category: 5 PLN off"]
    assert (gold["kind"], gold["value"], gold["code"], gold["channels"]) == ("percentage", "10.00", None, ["store"])
    assert gold["why"] == {"loyaltyTier": "GOLD", "boughtInCategories": []}
    assert (liked["code"], liked["value"], liked["currency"]) == ("LIKED5", "5.00", "PLN")
    assert liked["why"] == {"loyaltyTier": None, "boughtInCategories": [category_name]}
    assert liked["endsAt"] == (now + timedelta(days=7)).isoformat()
    assert "1000" not in str(offers)  # the promotion's limits and use counts are everyone's, not theirs

    theirs = (await dpo_export(gql, dpo, other["id"]))["request"]["export"]["data"]["personalOffers"]
    assert theirs == []
    await dpo_erase(gql, dpo, person["id"])
    erased = (await dpo_export(gql, dpo, person["id"]))["request"]["export"]
    jsonschema.validate(erased, export_schema())
    assert erased["data"]["personalOffers"] == []


async def test_the_erasure_leaves_no_personal_data_keeps_what_the_law_requires_and_ends_the_session(
    gql, runtime, token_for
):
    person = await _customer_who_did_everything(gql, runtime, token_for)
    other = await register(gql, "jan.nowak@example.com", first="Jan", last="Nowak", phone="+48 602 000 111")
    dpo = token_for("dpo", subject="dpo-1")
    payload = await dpo_erase(gql, dpo, person["customer"]["id"])
    assert payload["userErrors"] == []
    request = payload["request"]
    assert request["kind"] == "ERASURE" and request["status"] == "COMPLETED" and request["export"] is None
    retained = {r["category"]: r for r in request["retained"]}
    assert set(retained) == {"orders", "invoices", "consents", "access_log", "data_subject_requests"}
    assert retained["orders"]["until"].startswith(f"{int(request['completedAt'][:4]) + 5}-12-31")
    assert "7(1)" in retained["consents"]["legalBasis"] and retained["consents"]["until"] > request["completedAt"]

    needles = [EMAIL, "Ewelina", "Kowalska", "601234567", "601 234 567", "Marszalkowska", "00-061", "Ujazdowskie"]
    needles += [str(INVOICE["taxId"]), str(INVOICE["companyName"]), CARD, person["orders"]["card"]]
    assert await find_in_database(runtime.services.engine, needles) == []
    agent = token_for("agent", subject="agent-7")
    for name, order in person["orders"].items():  # kept for the accounting period, with amounts and VAT
        if name == "card":
            continue
        kept = (await gql.data(orders.READ_ORDER, {"id": order["id"]}, headers=agent))["order"]
        assert kept["total"] == order["total"] and kept["taxTotal"] == order["taxTotal"]
        assert kept["lines"][0]["taxAmount"] == order["lines"][0]["taxAmount"]

    refused = await gql.post("{ me { id } }", headers=person["token"])
    assert refused.status_code == 401

    exported = (await dpo_export(gql, dpo, person["customer"]["id"]))["request"]["export"]
    jsonschema.validate(exported, export_schema())
    assert exported["subject"]["erased"] is True and exported["data"]["profile"]["erased"] is True
    assert exported["data"]["carts"] == [] and exported["data"]["promotionUsages"] == []
    assert [c["granted"] for c in exported["data"]["consents"]] == [True, False]  # the proof stays

    them = await gql.data(
        "query($id: ID!) { customer(id: $id) { email firstName phone } }", {"id": other["id"]}, headers=agent
    )
    assert them["customer"] == {"email": "jan.nowak@example.com", "firstName": "Jan", "phone": "+48602000111"}

    again = await register(gql, EMAIL, first="Ewelina", last="Kowalska")  # a new customer, nothing of the old
    assert again["id"] != person["customer"]["id"]
    assert (await gql.data("{ me { email cart { id } } }", headers=await sign_in(gql, EMAIL)))["me"] == {
        "email": EMAIL,
        "cart": None,
    }


async def test_an_erasure_is_audited_under_the_customer_with_no_personal_data(gql, runtime, token_for):
    customer = await register(gql, "audited@example.com", first="Zofia")
    dpo = token_for("dpo", subject="dpo-9")
    await dpo_erase(gql, dpo, customer["id"])
    async with runtime.services.sessions() as session:
        records = list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())
    key = from_global_id(customer["id"])[1]
    assert ("dpo-9", "mutation dataSubjectErase", key) in {(r.actor, r.operation, r.subject) for r in records}
    assert {"DataSubjectRequest.retained", "DataSubjectRequest.status"} <= {
        f for r in records for f in r.fields.split()
    }
    assert await find_in_database(runtime.services.engine, ["audited@example.com", "Zofia"]) == []
    assert (await runtime.services.audit.verify()).ok


async def _fail_sign_ins(gql: Any, email: str, times: int = LOCK_AFTER_FAILURES) -> list[str]:
    """The error codes of `times` sign-ins with a wrong password."""
    codes = []
    for _ in range(times):
        payload = (await gql.data(SIGN_IN, {"email": email, "password": "guess guess"}))["customerAccessTokenCreate"]
        codes.append(payload["userErrors"][0]["code"])
    return codes


def _throttle_index(runtime: Runtime, email: str) -> bytes:
    vault = runtime.services.vault
    return vault.derived_index("sign_in_throttle", vault.blind_index("email", email))


async def _throttled_emails(runtime: Runtime) -> list[bytes | None]:
    async with runtime.services.engine.connect() as conn:
        return sorted(
            (await conn.execute(select(SignInThrottle.email_index))).scalars(), key=lambda index: index or b""
        )


async def test_the_erasure_deletes_the_sign_in_throttles_of_the_persons_email_and_no_one_elses(gql, runtime, token_for):
    """A lock on the email as typed is bookkeeping about the person: it goes with them, while a
    stranger's and an unknown email's locks stay, and the erased email is then throttled like any."""
    person = await register(gql, "locked.out@example.com")
    await register(gql, "jan.nowak@example.com")
    names = ("locked.out", "jan.nowak", "nobody.here")
    index = {name: _throttle_index(runtime, f"{name}@example.com") for name in names}
    assert await _fail_sign_ins(gql, "Locked.Out@example.com ", 2) == ["INVALID_CREDENTIALS"] * 2  # as typed
    for email in ("locked.out@example.com", "jan.nowak@example.com", "nobody.here@example.com"):
        await _fail_sign_ins(gql, email, LOCK_AFTER_FAILURES)
    assert await _throttled_emails(runtime) == sorted(index.values())  # kept alike for an unknown email

    assert (await dpo_erase(gql, token_for("dpo"), person["id"]))["userErrors"] == []
    assert await _throttled_emails(runtime) == sorted([index["jan.nowak"], index["nobody.here"]])
    assert await _fail_sign_ins(gql, "jan.nowak@example.com", 1) == ["TOO_MANY_ATTEMPTS"]  # still locked
    assert await _fail_sign_ins(gql, "nobody.here@example.com", 1) == ["TOO_MANY_ATTEMPTS"]
    erased_email = await _fail_sign_ins(gql, "locked.out@example.com", LOCK_AFTER_FAILURES + 1)
    assert erased_email == ["INVALID_CREDENTIALS"] * LOCK_AFTER_FAILURES + ["TOO_MANY_ATTEMPTS"]


async def test_a_batch_erasure_deletes_the_sign_in_throttles_of_every_persons_email(gql, runtime):
    people = [await register(gql, f"batch{n}@example.com") for n in range(2)]
    await register(gql, "stays@example.com")
    for email in ("batch0@example.com", "batch1@example.com", "stays@example.com"):
        await _fail_sign_ins(gql, email, 2)
    service = runtime.services.requests
    keys = [int(from_global_id(p["id"])[1]) for p in people]
    subjects = await subjects_by_ids(runtime.services.engine, keys)
    opened = [await service.open("ERASURE", customer_key=k, subject_id=subjects[k], requested_by="dpo-1") for k in keys]
    await service.run_many([r.id for r in opened])
    assert await _throttled_emails(runtime) == [_throttle_index(runtime, "stays@example.com")]


async def test_an_unknown_person_is_rejected_and_said_so(gql, token_for):
    payload = await dpo_export(gql, token_for("dpo"), "Q3VzdG9tZXI6OTk5OTk5")
    assert payload["request"]["status"] == "REJECTED" and payload["request"]["completedAt"] is not None
    assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]


async def test_the_deadline_is_a_month_and_extends_once_by_two_months_for_a_reason(
    gql, runtime, token_for, clock: FrozenClock
):
    customer = await register(gql, "slow@example.com")
    service = runtime.services.requests
    key = int(from_global_id(customer["id"])[1])
    opened = await service.open(
        "ERASURE",
        customer_key=key,
        subject_id=(await subjects_by_ids(runtime.services.engine, [key]))[key],
        requested_by="dpo-1",
    )
    assert opened.status == "PENDING"
    assert opened.received_at + timedelta(days=28) <= opened.due_at <= opened.received_at + timedelta(days=31)
    dpo = token_for("dpo")
    request_id = to_global_id("DataSubjectRequest", opened.id)
    bad = (await gql.data(EXTEND, {"id": request_id, "reason": "  "}, headers=dpo))["dataSubjectRequestExtend"]
    assert [e["code"] for e in bad["userErrors"]] == ["INVALID_REASON"]
    reason = "The person asked for 40 000 records of recordings; collecting them takes longer."
    extended = (await gql.data(EXTEND, {"id": request_id, "reason": reason}, headers=dpo))["dataSubjectRequestExtend"]
    assert extended["userErrors"] == [] and extended["request"]["extensionReason"] == reason
    due = extended["request"]["dueAt"]
    assert due > opened.due_at.isoformat()
    twice = (await gql.data(EXTEND, {"id": request_id, "reason": reason}, headers=dpo))["dataSubjectRequestExtend"]
    assert [e["code"] for e in twice["userErrors"]] == ["ALREADY_EXTENDED"]

    clock.advance(timedelta(days=100))
    dpo = token_for("dpo")
    overdue = (await gql.data(LIST, {"overdue": True}, headers=dpo))["dataSubjectRequests"]
    assert [r["id"] for r in overdue] == [request_id]
    await service.run(opened.id)
    assert (await gql.data(LIST, {"overdue": True}, headers=dpo))["dataSubjectRequests"] == []


async def test_an_overdue_request_cannot_be_extended_after_its_deadline(gql, runtime, token_for, clock: FrozenClock):
    """Art. 12(3) allows an extension within the first month only; a late one would hide the breach."""
    customer = await register(gql, "late@example.com")
    key = int(from_global_id(customer["id"])[1])
    opened = await runtime.services.requests.open(
        "EXPORT",
        customer_key=key,
        subject_id=(await subjects_by_ids(runtime.services.engine, [key]))[key],
        requested_by="dpo-1",
    )
    request_id = to_global_id("DataSubjectRequest", opened.id)
    clock.advance(timedelta(days=45))
    dpo = token_for("dpo")
    late = (await gql.data(EXTEND, {"id": request_id, "reason": "busy"}, headers=dpo))["dataSubjectRequestExtend"]
    assert late["request"] is None
    assert [(e["code"], e["field"]) for e in late["userErrors"]] == [("DEADLINE_PASSED", ["requestId"])]
    overdue = (await gql.data(LIST, {"overdue": True}, headers=dpo))["dataSubjectRequests"]
    assert [(r["id"], r["dueAt"]) for r in overdue] == [(request_id, opened.due_at.isoformat())]


async def test_an_interrupted_erasure_stays_in_progress_and_resumes_where_it_stopped(
    gql, runtime, token_for, monkeypatch
):
    customer = await register(gql, "interrupted@example.com", first="Iga")
    service = runtime.services.requests
    sources = {s.name: s for s in service.registry.sources}
    calls: list[str] = []
    original = sources["keys"].erase_many

    async def crash(ctx: Any, subjects: Any) -> Any:
        calls.append("keys")
        raise RuntimeError("the machine lost power")

    monkeypatch.setattr(sources["keys"], "erase_many", crash)
    response = await gql.post(
        "mutation($id: ID!) { dataSubjectErase(customerId: $id) { request { status } } }",
        {"id": customer["id"]},
        headers=token_for("dpo"),
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    [pending] = await service.unfinished()
    request = await service.get(pending)
    assert request is not None and request.status == "IN_PROGRESS"
    before_keys = [s.name for s in service.registry.sources]
    assert request.steps_done == tuple(before_keys[: before_keys.index("keys")])

    monkeypatch.setattr(sources["keys"], "erase_many", original)
    finished = await service.run(pending)
    assert finished.status == "COMPLETED" and finished.steps_done[-1] == "requests"
    assert len(finished.steps_done) == len(set(finished.steps_done)) == len(service.registry.sources)
    assert await service.unfinished() == []
    assert [e.customer_key for e in service.ledger.entries()] == [int(from_global_id(customer["id"])[1])]


async def test_an_open_websocket_of_an_erased_customer_is_refused_its_next_operation(gql, runtime, token_for):
    import asyncio
    import json

    from tests.live_server import serving
    from tests.policy.test_websocket import GUARD, _send, _socket

    customer = await register(gql, "socket@example.com", first="Sonia")
    me = await sign_in(gql, "socket@example.com")
    async with serving(runtime) as port, _socket(port, me) as ws:
        await _send(ws, "{ me { firstName } }", id="1")
        first = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
        assert first["payload"]["data"]["me"]["firstName"] == "Sonia"
        await asyncio.wait_for(ws.recv(), GUARD)  # complete
        await dpo_erase(gql, token_for("dpo"), customer["id"])
        await _send(ws, "{ me { firstName } }", id="2")
        refused = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
    assert refused["type"] == "error" and [e["extensions"]["code"] for e in refused["payload"]] == ["UNAUTHENTICATED"]


async def test_an_erased_check_that_raced_the_erasure_does_not_keep_the_token_working(
    gql, runtime, token_for, monkeypatch
):
    """A read of "not erased" that started before the erasure must not be remembered after it."""
    import asyncio

    from commerce.customers import service as customers

    customer = await register(gql, "race@example.com")
    me = await sign_in(gql, "race@example.com")
    original = customers.erased_among
    read, go_on = asyncio.Event(), asyncio.Event()

    async def held(engine: Any, ids: Any) -> set[int]:
        found = await original(engine, ids)
        read.set()
        await go_on.wait()
        return found

    monkeypatch.setattr(customers, "erased_among", held)
    racing = asyncio.create_task(runtime.erased.is_erased(int(from_global_id(customer["id"])[1])))
    await read.wait()
    monkeypatch.setattr(customers, "erased_among", original)
    await dpo_erase(gql, token_for("dpo"), customer["id"])
    go_on.set()
    assert await racing is False  # the stale answer, read before the erasure
    assert (await gql.post("{ me { id } }", headers=me)).status_code == 401


async def test_an_order_from_a_cart_made_before_signing_in_is_exported_and_erased_with_the_customer(
    gql, runtime, token_for
):
    """The cart was never attached; the signed-in customer's order of it is theirs all the same."""
    customer = await register(gql, "before@example.com", first="Ewelina", last="Kowalska")
    me = await sign_in(gql, "before@example.com")
    await orders.set_stock(runtime.services.engine, 1, orders.WAREHOUSE, 10, only_here=False)
    before_sign_in = await orders.new_cart(gql, {}, [(1, 1)])
    order = await orders.placed(
        gql, me, before_sign_in, "ship-1", method="SHIP_TO_ADDRESS", token=CARD, address=ADDRESS
    )
    dpo = token_for("dpo")
    exported = (await dpo_export(gql, dpo, customer["id"]))["request"]["export"]["data"]
    assert [o["number"] for o in exported["orders"]] == [order["number"]]
    assert ADDRESS["line1"] in str(exported["orders"])
    await dpo_erase(gql, dpo, customer["id"])
    read = "query($id: ID!) { order(id: $id) { shippingAddress { line1 } } }"
    kept = (await gql.data(read, {"id": order["id"]}, headers=token_for("agent")))["order"]
    assert kept["shippingAddress"] is None
    assert await find_in_database(runtime.services.engine, [ADDRESS["line1"]]) == []


async def test_the_retention_job_shreds_invoices_and_deletes_ownerless_orders_when_the_period_ends(
    gql, runtime, token_for, clock: FrozenClock
):
    customer = await register(gql, "invoiced@example.com", first="Iwona")
    me = await sign_in(gql, "invoiced@example.com")
    await orders.set_stock(runtime.services.engine, 1, orders.WAREHOUSE, 5, only_here=False)
    cart = await orders.new_cart(gql, me, [(1, 1)])
    placed = await gql.data(
        orders.CHECKOUT,
        {"input": {**orders.checkout_input(cart, "inv-1", "SHIP_TO_ADDRESS", address=ADDRESS), "invoice": INVOICE}},
        headers=me,
    )
    assert placed["checkoutComplete"]["userErrors"] == []
    await dpo_erase(gql, token_for("dpo"), customer["id"])
    service = runtime.services.requests
    assert await service.expire(dry_run=True) == {
        "access_log": 0,
        "carts": 0,
        "consents": 0,
        "data_subject_requests": 0,
        "invoices": 0,
        "orders": 0,
    }
    clock.advance(timedelta(days=365 * 6 + 2))  # past 5 years from the end of the year of the sale
    due = await service.expire(dry_run=True)
    assert (due["invoices"], due["orders"], due["data_subject_requests"]) == (1, 1, 1)
    assert await _accounting_keys(runtime) == 1  # the invoice outlived the erasure until now
    assert await service.expire(dry_run=False) == due
    assert await _accounting_keys(runtime) == 0
    assert await service.expire(dry_run=True) == dict.fromkeys(due, 0)
    order = await gql.data(
        orders.READ_ORDER, {"id": placed["checkoutComplete"]["order"]["id"]}, headers=token_for("agent")
    )
    assert order["order"] is None


async def test_an_order_refunded_the_next_year_is_kept_five_years_from_the_refund(
    gql, runtime, token_for, clock: FrozenClock
):
    """The accounting period counts from the order's latest accounting event, not from the sale."""
    from datetime import UTC, datetime

    now = clock.now()
    clock.advance(datetime(now.year, 12, 30, 12, tzinfo=UTC) - now)  # sold on 30 December
    customer = await register(gql, "refunded@example.com", first="Regina")
    me = await sign_in(gql, "refunded@example.com")
    await orders.set_stock(runtime.services.engine, 1, orders.WAW, 10, only_here=False)
    cart = await orders.new_cart(gql, me, [(1, 2)])
    placed = await gql.data(
        orders.CHECKOUT, {"input": {**orders.checkout_input(cart, "r-1", token=CARD), "invoice": INVOICE}}, headers=me
    )
    order = placed["checkoutComplete"]["order"]
    staff = {**token_for("staff", subject="staff-waw", location="ST-WAW"), "X-Channel": "store"}
    await gql.data(orders.READY, {"id": order["id"]}, headers=staff)
    await gql.data(orders.PICKUP, {"id": order["id"]}, headers=staff)
    clock.advance(timedelta(days=7))  # returned on 6 January: the refund is booked in the next year
    staff = {**token_for("staff", subject="staff-waw", location="ST-WAW"), "X-Channel": "store"}
    back = {"orderLineId": order["lines"][0]["id"], "quantity": 1}
    returned = await gql.data(
        orders.RETURN, {"id": order["id"], "lines": [back], "location": orders.location_id(orders.WAW)}, headers=staff
    )
    assert returned["orderReturnLines"]["userErrors"] == []
    refund_year = clock.now().year
    erased = await dpo_erase(gql, token_for("dpo"), customer["id"])
    kept = {r["category"]: r["until"] for r in erased["request"]["retained"]}
    end = f"{refund_year + 5}-12-31T23:59:59+00:00"
    assert (kept["orders"], kept["invoices"]) == (end, end)

    service = runtime.services.requests
    clock.advance(datetime(refund_year + 5, 6, 1, tzinfo=UTC) - clock.now())  # 5 years after the sale's year
    early = await service.expire(dry_run=False)
    assert (early["orders"], early["invoices"]) == (0, 0)
    read = (await gql.data(orders.READ_ORDER, {"id": order["id"]}, headers=token_for("agent")))["order"]
    assert read is not None and await _accounting_keys(runtime) == 1
    clock.advance(datetime(refund_year + 6, 1, 2, tzinfo=UTC) - clock.now())
    due = await service.expire(dry_run=False)
    assert (due["orders"], due["invoices"]) == (1, 1)
    assert (await gql.data(orders.READ_ORDER, {"id": order["id"]}, headers=token_for("agent")))["order"] is None


async def _accounting_keys(runtime: Runtime) -> int:
    from sqlalchemy import func

    from vault.models import ACCOUNTING, DataKey

    async with runtime.services.engine.connect() as conn:
        stmt = select(func.count()).select_from(DataKey).where(DataKey.purpose == ACCOUNTING)
        return int((await conn.execute(stmt)).scalar_one())
