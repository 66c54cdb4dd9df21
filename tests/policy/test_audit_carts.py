"""An operator working on a customer's cart leaves an audit record; the customer does not."""

from __future__ import annotations

from sqlalchemy import select

from core.ids import from_global_id
from gateway.runtime import Runtime
from vault.audit import verify_chain
from vault.audit_models import AuditRecord

CREATE = "mutation($v: ID!) { cartCreate(lines: [{variantId: $v, quantity: 1}]) { cart { id } } }"
ADD = """mutation($id: ID!, $v: ID!) { cartLinesAdd(cartId: $id, lines: [{variantId: $v, quantity: 1}]) {
    cart { id lines { quantity } } userErrors { code } } }"""


async def _audit(runtime: Runtime) -> list[AuditRecord]:
    async with runtime.services.sessions() as session:
        return list((await session.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def _variant(gql) -> str:  # type: ignore[no-untyped-def]
    data = await gql.data("{ products(first: 1) { edges { node { variants { id } } } } }")
    return data["products"]["edges"][0]["node"]["variants"][0]["id"]


async def test_an_agent_changing_a_customers_cart_is_audited_by_subject_only(gql, runtime, token_for):
    variant = await _variant(gql)
    customer = token_for("customer", subject="7")
    cart = (await gql.data(CREATE, {"v": variant}, headers=customer))["cartCreate"]["cart"]["id"]
    assert await _audit(runtime) == []  # a customer working on their own cart is not an operator access

    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    await gql.data(ADD, {"id": cart, "v": variant}, headers=agent)
    records = await _audit(runtime)
    assert {(r.actor, r.role, r.operation, r.subject, r.outcome) for r in records} == {
        ("agent-9", "agent", "mutation cartLinesAdd", "7", "allowed")
    }
    assert "Cart.lines" in " ".join(r.fields for r in records)
    assert (await verify_chain(runtime.services.engine)).checked == len(records)


async def test_a_guest_cart_has_no_subject_and_leaves_no_audit_record(gql, runtime, token_for):
    variant = await _variant(gql)
    cart = (await gql.data(CREATE, {"v": variant}))["cartCreate"]["cart"]["id"]
    assert from_global_id(cart, "Cart")
    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    await gql.data(ADD, {"id": cart, "v": variant}, headers=agent)
    assert await _audit(runtime) == []


async def test_an_operators_read_that_cannot_be_audited_is_not_answered(gql, runtime, token_for, monkeypatch):
    async def broken(*_: object, **__: object) -> None:
        raise OSError("the audit database is down")

    monkeypatch.setattr(runtime.services.audit, "append", broken)
    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    response = await gql.post('{ customer(id: "Q3VzdG9tZXI6MQ") { email } }', headers=agent)
    assert response.status_code == 500
    body = response.json()
    assert "data" not in body, "personal data shown though its access could not be audited"
    [error] = body["errors"]
    assert error["extensions"]["code"] == "AUDIT_UNAVAILABLE" and len(error["extensions"]["traceId"]) == 32
    assert "database is down" not in response.text
    await gql.data("{ channels { code } }", headers=agent)  # what needs no audit still runs
