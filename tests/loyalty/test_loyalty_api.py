"""Loyalty through the API: the card finds the customer at the till, accounts read the same
everywhere, agents adjust with a reason (audited), and no one reads another's points."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from commerce.loyalty import service as loyalty
from core.db import writer
from core.ids import from_global_id
from gateway.runtime import Runtime
from tests.customers.helpers import register, sign_in
from vault.audit_models import AuditRecord

ACCOUNT = """query { me { loyalty { cardNumber balance tier pointsToNextTier
  transactions(first: 2) { edges { node { kind points reason orderId channel } cursor }
  pageInfo { hasNextPage endCursor } } } } }"""
BY_CARD = "query($n: String!) { customerByLoyaltyCard(cardNumber: $n) { id email loyalty { balance } } }"
ADJUST = """mutation($id: ID!, $p: Int!, $r: String!) { loyaltyAdjust(customerId: $id, points: $p, reason: $r) {
  loyalty { balance tier } userErrors { code field message } } }"""
STORE = {"X-Channel": "store"}


async def _customer(gql: Any, email: str) -> tuple[str, int, dict[str, str]]:
    customer = await register(gql, email)
    return customer["id"], int(from_global_id(customer["id"])[1]), await sign_in(gql, email)


async def _earn(runtime: Runtime, key: int, order: str, amount: str, channel: str = "store") -> int:
    async with writer(runtime.services.engine).begin() as conn:
        return await loyalty.earn_for_order(conn, key, order, channel, Decimal(amount), runtime.services.clock.now())


async def test_registration_issues_a_card_with_a_check_digit_that_finds_the_customer_at_the_till(
    gql, runtime: Runtime, token_for
) -> None:
    customer_id, _, me = await _customer(gql, "card@example.com")
    card = (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]["cardNumber"]
    assert len(card) == 16 and card.startswith("7700") and loyalty.card_is_valid(card)
    again = (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]["cardNumber"]
    assert again == card  # issued once

    till = {**token_for("staff", subject="staff-waw", location="ST-WAW"), **STORE}
    found = await gql.data(BY_CARD, {"n": f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"}, headers=till)
    assert found["customerByLoyaltyCard"]["id"] == customer_id
    assert found["customerByLoyaltyCard"]["email"] == "card@example.com"
    mistyped = card[:5] + str((int(card[5]) + 1) % 10) + card[6:]  # one wrong digit: the check digit catches it
    assert (await gql.data(BY_CARD, {"n": mistyped}, headers=till))["customerByLoyaltyCard"] is None

    online_staff = await gql.execute(BY_CARD, {"n": card}, headers=token_for("staff", subject="s", location="ST-WAW"))
    assert online_staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert online_staff["data"] == {"customerByLoyaltyCard": None}


async def test_the_card_number_is_stored_only_as_ciphertext_and_a_blind_index(gql, runtime: Runtime) -> None:
    _, key, me = await _customer(gql, "cipher@example.com")
    card = (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]["cardNumber"]
    from commerce.loyalty.models import LoyaltyAccountRow
    from vault.models import Lookup

    async with runtime.services.engine.connect() as conn:
        sealed = (
            await conn.execute(select(LoyaltyAccountRow.card_sealed).where(LoyaltyAccountRow.customer_key == key))
        ).scalar_one()
        digests = list((await conn.execute(select(Lookup.digest).where(Lookup.kind == "loyalty_card"))).scalars())
    assert card.encode() not in sealed and all(card.encode() not in d for d in digests)
    assert len(digests) >= 1


async def test_points_read_the_same_in_every_channel_newest_first_and_page_by_cursor(
    gql, runtime: Runtime, token_for
) -> None:
    customer_id, key, me = await _customer(gql, "pages@example.com")
    assert await _earn(runtime, key, "O-1", "120.50") == 120
    assert await _earn(runtime, key, "O-1", "120.50") == 120  # once per order
    assert await _earn(runtime, key, "O-2", "30.00", channel="web") == 30
    assert await _earn(runtime, key, "O-3", "1000.00", channel="marketplace") == 0  # not an earning channel

    web = (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]
    mobile = (await gql.data(ACCOUNT, headers={**me, "X-Channel": "mobile"}))["me"]["loyalty"]
    assert web == mobile
    assert (web["balance"], web["tier"], web["pointsToNextTier"]) == (150, "BRONZE", 850)
    edges = web["transactions"]["edges"]
    assert [(e["node"]["kind"], e["node"]["points"], e["node"]["channel"]) for e in edges] == [
        ("EARN", 30, "web"),
        ("EARN", 120, "store"),
    ]
    assert from_global_id(edges[0]["node"]["orderId"]) == ("Order", "O-2")
    assert web["transactions"]["pageInfo"]["hasNextPage"] is False

    agent = token_for("agent", subject="agent-1")
    page = """query($id: ID!, $after: String) { customer(id: $id) { loyalty { transactions(first: 1, after: $after) {
      edges { node { points } } pageInfo { hasNextPage endCursor } } } } }"""
    first = (await gql.data(page, {"id": customer_id}, headers=agent))["customer"]["loyalty"]["transactions"]
    assert first["pageInfo"]["hasNextPage"] is True and first["edges"][0]["node"]["points"] == 30
    after = first["pageInfo"]["endCursor"]
    second = (await gql.data(page, {"id": customer_id, "after": after}, headers=agent))["customer"]["loyalty"]
    assert [e["node"]["points"] for e in second["transactions"]["edges"]] == [120]


async def test_an_agent_adjusts_with_a_reason_and_the_access_is_audited(gql, runtime: Runtime, token_for) -> None:
    customer_id, key, me = await _customer(gql, "adjust@example.com")
    agent = token_for("agent", subject="agent-7")
    body = await gql.data(ADJUST, {"id": customer_id, "p": 250, "r": "Late delivery, sorry"}, headers=agent)
    assert body["loyaltyAdjust"] == {"loyalty": {"balance": 250, "tier": "BRONZE"}, "userErrors": []}

    blank = (await gql.data(ADJUST, {"id": customer_id, "p": 10, "r": "  "}, headers=agent))["loyaltyAdjust"]
    assert blank["loyalty"] is None
    assert [(e["code"], e["field"]) for e in blank["userErrors"]] == [("REASON_REQUIRED", ["reason"])]
    too_many = await gql.data(ADJUST, {"id": customer_id, "p": -251, "r": "Correction"}, headers=agent)
    assert [(e["code"], e["field"]) for e in too_many["loyaltyAdjust"]["userErrors"]] == [
        ("INSUFFICIENT_POINTS", ["points"])
    ]
    zero = (await gql.data(ADJUST, {"id": customer_id, "p": 0, "r": "Nothing"}, headers=agent))["loyaltyAdjust"]
    assert zero["userErrors"][0]["code"] == "INVALID_POINTS"

    history = (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]
    assert history["balance"] == 250
    assert [(e["node"]["kind"], e["node"]["reason"]) for e in history["transactions"]["edges"]] == [
        ("ADJUST", "Late delivery, sorry")
    ]
    assert await loyalty.ledger_sum(runtime.services.engine, key) == (250, 250, 250)

    async with runtime.services.engine.connect() as conn:
        records = (
            await conn.execute(select(AuditRecord).where(AuditRecord.operation == "mutation loyaltyAdjust"))
        ).all()
    assert records and all(r.subject == str(key) and r.actor == "agent-7" for r in records)

    own = await gql.execute(ADJUST, {"id": customer_id, "p": 1000, "r": "I deserve it"}, headers=me)
    assert own["errors"][0]["extensions"]["code"] == "FORBIDDEN" and own["data"] is None


async def test_a_customer_never_reads_another_customers_points(gql, runtime: Runtime) -> None:
    a_id, _, a = await _customer(gql, "a-points@example.com")
    b_id, b_key, _ = await _customer(gql, "b-points@example.com")
    await _earn(runtime, b_key, "B-1", "500")
    query = "query($id: ID!) { customer(id: $id) { loyalty { balance cardNumber } } }"
    theirs = await gql.execute(query, {"id": b_id}, headers=a)
    assert theirs["data"] == {"customer": None} and theirs["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql.data(query, {"id": a_id}, headers=a))["customer"]["loyalty"]["balance"] == 0


async def test_expire_points_command_expires_what_is_due_once(runtime: Runtime, clock) -> None:
    from datetime import timedelta

    engine = runtime.services.engine
    await _earn(runtime, 4242, "E-1", "100")
    clock.advance(timedelta(days=200))
    await _earn(runtime, 4242, "E-2", "40")
    assert await loyalty.expire_points(engine, clock.now() + timedelta(days=365 * 2 - 199)) == 100
    assert await loyalty.expire_points(engine, clock.now() + timedelta(days=365 * 2 - 199)) == 0
    assert await loyalty.ledger_sum(engine, 4242) == (40, 40, 40)


async def test_an_adjustment_whose_audit_record_cannot_be_written_does_not_happen(
    gql, runtime: Runtime, token_for, monkeypatch
) -> None:
    """An operator's change commits with its audit record or not at all: points an agent grants are
    never left in the balance unrecorded because the audit log refused the record after the commit."""
    customer_id, key, me = await _customer(gql, "unaudited@example.com")
    original = runtime.services.audit.append

    async def refusing(entries, conn=None):
        raise RuntimeError("the audit table is full")

    monkeypatch.setattr(runtime.services.audit, "append", refusing)
    monkeypatch.setattr(runtime.services.audit, "append_in", refusing)
    agent = token_for("agent", subject="agent-7")
    response = await gql.post(ADJUST, {"id": customer_id, "p": 5000, "r": "Goodwill"}, headers=agent)
    assert response.json().get("errors") and not (response.json().get("data") or {}).get("loyaltyAdjust")
    monkeypatch.setattr(runtime.services.audit, "append", original)
    assert await loyalty.ledger_sum(runtime.services.engine, key) == (0, 0, 0), "points granted, unaudited"
    assert (await gql.data(ACCOUNT, headers=me))["me"]["loyalty"]["balance"] == 0


async def test_an_adjustment_and_its_audit_record_commit_together(gql, runtime: Runtime, token_for) -> None:
    customer_id, key, _ = await _customer(gql, "audited-adjust@example.com")
    agent = token_for("agent", subject="agent-8")
    body = await gql.data(ADJUST, {"id": customer_id, "p": 30, "r": "Goodwill"}, headers=agent)
    assert body["loyaltyAdjust"]["userErrors"] == []
    async with runtime.services.engine.connect() as conn:
        records = (
            await conn.execute(select(AuditRecord).where(AuditRecord.operation == "mutation loyaltyAdjust"))
        ).all()
    assert {(r.actor, r.subject, r.outcome) for r in records} == {("agent-8", str(key), "allowed")}
    assert (await runtime.services.audit.verify()).ok


async def test_a_return_lowers_the_tier_only_while_the_points_it_takes_back_count_towards_it(
    gql, runtime: Runtime, clock, token_for
) -> None:
    """The tier counts points earned in the last 12 months, net of returns: a return takes back what
    its order earned, and stops counting when that order's points leave the window, not a year later."""
    from datetime import timedelta

    _, key, _ = await _customer(gql, "window@example.com")
    engine, start = runtime.services.engine, clock.now()
    assert await _earn(runtime, key, "W-1", "1000.00", channel="web") == 1000
    clock.advance(timedelta(days=330))  # the goods come back late in the year
    async with writer(engine).begin() as conn:
        reversal = await loyalty.reverse_for_return(
            conn, key, "W-1", "R-1", Decimal("1000.00"), Decimal("1000.00"), clock.now(), whole=True
        )
    assert reversal == loyalty.Reversal(1000, 0)
    assert await _earn(runtime, key, "W-2", "1200.00", channel="web") == 1200
    read = "{ me { loyalty { tier pointsEarnedInWindow } } }"
    me = token_for("customer", subject=str(key))
    assert (await gql.data(read, headers=me))["me"]["loyalty"] == {"tier": "SILVER", "pointsEarnedInWindow": 1200}

    clock.advance(start + timedelta(days=370) - clock.now())  # W-1 earned more than 12 months ago
    me = token_for("customer", subject=str(key))
    assert (await gql.data(read, headers=me))["me"]["loyalty"] == {"tier": "SILVER", "pointsEarnedInWindow": 1200}
