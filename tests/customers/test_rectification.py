"""Rectification (GDPR Art. 16): the customer corrects their data, or an agent or the DPO does
it for them (audited); a new email or phone is found by its blind index, the old one is not."""

from __future__ import annotations

from sqlalchemy import select

from tests.customers.helpers import PASSWORD, SIGN_IN, register, sign_in
from vault.audit_models import AuditRecord

UPDATE = """mutation($input: CustomerUpdateInput!, $id: ID) { customerUpdate(input: $input, customerId: $id) {
    customer { id email firstName lastName phone } userErrors { code field message } } }"""
BY_EMAIL = "query($e: String!) { customerByEmail(email: $e) { id } }"
BY_PHONE = "query($p: String!) { customersByPhone(phone: $p) { id } }"


async def test_a_customer_corrects_their_email_and_phone_and_signs_in_with_the_new_email(gql, token_for):
    me = await register(gql, "old@example.com", first="Ola", phone="+48 600 000 001")
    headers = await sign_in(gql, "old@example.com")
    changed = (
        await gql.data(UPDATE, {"input": {"email": "New@Example.com", "phone": "+48 600 000 002"}}, headers=headers)
    )["customerUpdate"]
    assert changed["userErrors"] == []
    assert changed["customer"] == {
        "id": me["id"],
        "email": "new@example.com",
        "firstName": "Ola",
        "lastName": "Lovelace",
        "phone": "+48600000002",
    }
    agent = token_for("agent")
    assert (await gql.data(BY_EMAIL, {"e": "new@example.com"}, headers=agent))["customerByEmail"]["id"] == me["id"]
    assert (await gql.data(BY_EMAIL, {"e": "old@example.com"}, headers=agent))["customerByEmail"] is None
    assert (await gql.data(BY_PHONE, {"p": "+48600000001"}, headers=agent))["customersByPhone"] == []
    assert (await gql.data(BY_PHONE, {"p": "+48600000002"}, headers=agent))["customersByPhone"] == [{"id": me["id"]}]
    old = (await gql.data(SIGN_IN, {"email": "old@example.com", "password": PASSWORD}))["customerAccessTokenCreate"]
    assert old["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    await sign_in(gql, "new@example.com")
    await register(gql, "old@example.com")  # the old address is free for someone else


async def test_an_email_that_belongs_to_someone_else_is_refused_and_nothing_changes(gql):
    await register(gql, "taken@example.com")
    await register(gql, "mine@example.com", first="Mia")
    headers = await sign_in(gql, "mine@example.com")
    refused = (await gql.data(UPDATE, {"input": {"email": "TAKEN@example.com", "firstName": "Maja"}}, headers=headers))[
        "customerUpdate"
    ]
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("EMAIL_TAKEN", ["input", "email"])]
    me = (await gql.data("{ me { email firstName } }", headers=headers))["me"]
    assert me == {"email": "mine@example.com", "firstName": "Mia"}
    invalid = (await gql.data(UPDATE, {"input": {"email": "nope", "firstName": " "}}, headers=headers))[
        "customerUpdate"
    ]
    assert sorted(e["code"] for e in invalid["userErrors"]) == ["INVALID_EMAIL", "INVALID_NAME"]


async def test_an_agent_or_the_dpo_rectifies_on_the_customers_behalf_and_it_is_audited(gql, runtime, token_for):
    customer = await register(gql, "behalf@example.com", last="Kowalsky")
    dpo = token_for("dpo", subject="dpo-2")
    fixed = (await gql.data(UPDATE, {"input": {"lastName": "Kowalski"}, "id": customer["id"]}, headers=dpo))[
        "customerUpdate"
    ]
    assert fixed["userErrors"] == [] and fixed["customer"]["lastName"] == "Kowalski"
    async with runtime.services.sessions() as session:
        records = list((await session.scalars(select(AuditRecord))).all())
    assert ("dpo-2", "mutation customerUpdate") in {(r.actor, r.operation) for r in records}
    assert "Kowalsk" not in " ".join(f"{r.fields} {r.subject} {r.operation}" for r in records)


async def test_a_customer_cannot_rectify_another_customers_data(gql):
    victim = await register(gql, "victim@example.com", first="Vera")
    await register(gql, "intruder@example.com")
    intruder = await sign_in(gql, "intruder@example.com")
    body = await gql.execute(UPDATE, {"input": {"firstName": "Hacked"}, "id": victim["id"]}, headers=intruder)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and body["data"] is None
    victim_headers = await sign_in(gql, "victim@example.com")
    assert (await gql.data("{ me { firstName } }", headers=victim_headers))["me"]["firstName"] == "Vera"
