"""An operator working on a customer's cart leaves an audit record; the customer does not."""

from __future__ import annotations

from sqlalchemy import select

from core.ids import from_global_id
from gateway.runtime import Runtime
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
    assert (await runtime.services.audit.verify()).checked == len(records)


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


ADD_ERRORS_ONLY = """mutation($id: ID!, $v: ID!) { cartLinesAdd(cartId: $id, lines: [{variantId: $v, quantity: 1}]) {
    userErrors { code } } }"""
READ = "query($id: ID!) { cart(id: $id) { id } }"


async def _customer_cart(gql, token_for, variant: str) -> str:
    customer = token_for("customer", subject="7")
    return (await gql.data(CREATE, {"v": variant}, headers=customer))["cartCreate"]["cart"]["id"]


async def test_an_operators_change_is_audited_even_when_the_payload_shows_nothing_of_the_cart(gql, runtime, token_for):
    """The change itself is the access: recorded in its own transaction, whatever the client selects."""
    variant = await _variant(gql)
    cart = await _customer_cart(gql, token_for, variant)
    operators = {
        "agent-9": {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"},
        "staff-waw": {**token_for("staff", subject="staff-waw", location="ST-WAW"), "X-Channel": "store"},
    }
    for headers in operators.values():
        assert (await gql.data(ADD_ERRORS_ONLY, {"id": cart, "v": variant}, headers=headers))["cartLinesAdd"] == {
            "userErrors": []
        }
    records = await _audit(runtime)
    assert [(r.actor, r.operation, r.fields, r.subject, r.outcome) for r in records] == [
        (actor, "mutation cartLinesAdd", "Cart (changed)", "7", "allowed") for actor in operators
    ]
    assert (await runtime.services.audit.verify()).ok


async def test_a_change_whose_audit_cannot_be_written_does_not_happen(gql, runtime, token_for, monkeypatch):
    variant = await _variant(gql)
    cart = await _customer_cart(gql, token_for, variant)
    original = runtime.services.audit.append

    async def failing_inside_the_change(entries, conn=None):
        if conn is not None:
            raise RuntimeError("the audit table is full")
        return await original(entries, conn)

    monkeypatch.setattr(runtime.services.audit, "append", failing_inside_the_change)
    agent = {**token_for("agent", subject="agent-9"), "X-Channel": "call-center"}
    body = await gql.execute(ADD_ERRORS_ONLY, {"id": cart, "v": variant}, headers=agent)
    assert body["errors"] and body["data"] is None
    owner = token_for("customer", subject="7")
    lines = await gql.data("query($id: ID!) { cart(id: $id) { lines { quantity } } }", {"id": cart}, headers=owner)
    assert lines["cart"]["lines"] == [{"quantity": 1}], "the change committed without its audit record"


async def test_refused_operator_reads_and_changes_of_a_cart_are_audited(gql, runtime, token_for):
    variant = await _variant(gql)
    cart = await _customer_cart(gql, token_for, variant)
    off_till = token_for("staff", subject="staff-waw", location="ST-WAW")  # online, not at the till
    body = await gql.execute(READ, {"id": cart}, headers=off_till)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    body = await gql.execute(ADD_ERRORS_ONLY, {"id": cart, "v": variant}, headers=off_till)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    dpo = token_for("dpo", subject="dpo-1")
    assert (await gql.data(READ, {"id": cart}, headers=dpo))["cart"]["id"] == cart  # the DPO reads ...
    body = await gql.execute(ADD_ERRORS_ONLY, {"id": cart, "v": variant}, headers=dpo)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]  # ... and does not change
    got = {(r.actor, r.operation, r.subject, r.outcome) for r in await _audit(runtime)}
    assert got == {
        ("staff-waw", "query cart", "7", "denied"),
        ("staff-waw", "mutation cartLinesAdd", "7", "denied"),
        ("dpo-1", "query cart", "7", "allowed"),
        ("dpo-1", "mutation cartLinesAdd", "7", "denied"),
    }


async def test_operators_changing_carts_while_others_read_customers_keep_one_unbroken_chain(gql, runtime, token_for):
    """Audit records written inside cart changes and after reads interleave: every one lands, in one chain."""
    import asyncio

    variant = await _variant(gql)
    carts = []
    for key in ("7", "8", "9"):
        owner = token_for("customer", subject=key)
        carts.append((await gql.data(CREATE, {"v": variant}, headers=owner))["cartCreate"]["cart"]["id"])
    agents = [{**token_for("agent", subject=f"agent-{n}"), "X-Channel": "call-center"} for n in range(3)]

    async def change(n: int) -> None:
        for _ in range(3):
            body = await gql.data(ADD_ERRORS_ONLY, {"id": carts[n], "v": variant}, headers=agents[n])
            assert body["cartLinesAdd"]["userErrors"] == []

    async def read(n: int) -> None:
        for _ in range(3):
            await gql.data('{ customer(id: "Q3VzdG9tZXI6MQ") { id } }', headers=agents[n])

    await asyncio.gather(*(change(n) for n in range(3)), *(read(n) for n in range(3)))
    records = await _audit(runtime)
    changes = [r for r in records if r.operation == "mutation cartLinesAdd"]
    assert sorted((r.actor, r.subject) for r in changes) == sorted(
        (f"agent-{n}", key) for n, key in enumerate(("7", "8", "9")) for _ in range(3)
    )
    assert {r.operation for r in records} == {"mutation cartLinesAdd", "query customer"}
    assert {r.actor for r in records if r.operation == "query customer"} == {"agent-0", "agent-1", "agent-2"}
    report = await runtime.services.audit.verify()
    assert report.ok and report.checked == len(records)
