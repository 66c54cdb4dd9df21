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


async def _variant(gql) -> str:
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


async def test_the_audit_names_the_real_operation_behind_an_alias_in_a_fragment(gql, runtime, token_for):
    """An alias must not disguise a customer look-up as a catalog read in the audit log."""
    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    disguised = """{ ...Innocent ... on Query { locations: customer(id: "Q3VzdG9tZXI6MQ") { id } } }
        fragment Innocent on Query { channels: customer(id: "Q3VzdG9tZXI6MQ") { email } }"""
    await gql.data(disguised, headers=agent)
    assert {r.operation for r in await _audit(runtime)} == {"query customer"}


async def test_whatever_an_operator_puts_in_an_id_never_reaches_the_append_only_audit_log(gql, runtime, token_for):
    """The log cannot be erased, so no PII may enter it, and a long key must not fail the append on PostgreSQL."""
    from core.ids import to_global_id

    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    for key in ("jan.kowalski@example.com", "9" * 200):
        body = await gql.execute(
            "query($id: ID!) { customer(id: $id) { email } }", {"id": to_global_id("Customer", key)}, headers=agent
        )
        assert body["data"] == {"customer": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert await _audit(runtime) == []


async def test_another_spelling_of_a_customers_id_is_audited_under_their_key(gql, runtime, token_for):
    """`Customer:0001` reads customer 1: the record must say "1", or a search of their accesses misses it."""
    from core.ids import to_global_id

    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    await gql.data(
        "query($id: ID!) { customer(id: $id) { email } }", {"id": to_global_id("Customer", "0001")}, headers=agent
    )
    assert {r.subject for r in await _audit(runtime)} == {"1"}
