"""Who may read whom: a customer sees only themself; operators see anyone; nobody anonymous."""

from __future__ import annotations

from tests.customers.helpers import register, sign_in

CUSTOMER = "query($id: ID!) { customer(id: $id) { id email firstName } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Customer { email lastName } } }"


async def test_one_customer_cannot_read_another_by_customer_or_node(gql):
    await register(gql, "a@example.com", first="Alice")
    bob = await register(gql, "b@example.com", first="Bob", last="Secretlastname")
    alice = await sign_in(gql, "a@example.com")
    for query, field in ((CUSTOMER, "customer"), (NODE, "node")):
        body = await gql.execute(query, {"id": bob["id"]}, headers=alice)
        assert body["data"] == {field: None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert "b@example.com" not in str(body) and "Secretlastname" not in str(body)


async def test_a_customer_reads_themself_by_customer_and_node(gql):
    me = await register(gql, "self@example.com")
    headers = await sign_in(gql, "self@example.com")
    assert (await gql.data(CUSTOMER, {"id": me["id"]}, headers=headers))["customer"]["email"] == "self@example.com"
    assert (await gql.data(NODE, {"id": me["id"]}, headers=headers))["node"]["email"] == "self@example.com"


async def test_operators_read_any_customer_and_the_anonymous_must_sign_in(gql, token_for):
    someone = await register(gql, "someone@example.com")
    # each in a channel of theirs: staff at the till, agents (and admins) in the call center, the DPO on the web
    channels = {"agent": "call-center", "dpo": "web", "staff": "store", "admin": "call-center"}
    for role, location in (("agent", None), ("dpo", None), ("staff", "ST-WAW"), ("admin", None)):
        headers = {**token_for(role, location=location), "X-Channel": channels[role]}
        data = await gql.data(CUSTOMER, {"id": someone["id"]}, headers=headers)
        assert data["customer"]["email"] == "someone@example.com"
    body = await gql.execute(CUSTOMER, {"id": someone["id"]})
    assert body["data"] == {"customer": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_store_staff_look_up_a_customer_only_at_the_till(gql, token_for):
    someone = await register(gql, "at-the-till@example.com")
    staff = token_for("staff", location="ST-WAW")
    from_the_web = await gql.execute(CUSTOMER, {"id": someone["id"]}, headers={**staff, "X-Channel": "web"})
    assert from_the_web["data"] == {"customer": None}
    assert from_the_web["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    at_the_till = await gql.data(CUSTOMER, {"id": someone["id"]}, headers={**staff, "X-Channel": "store"})
    assert at_the_till["customer"]["email"] == "at-the-till@example.com"


async def test_a_customer_cannot_list_customers(gql):
    mine = await register(gql, "lister@example.com")
    body = await gql.execute(
        "query($ids: [ID!]!) { customers(ids: $ids) { email } }",
        {"ids": [mine["id"]]},
        headers=await sign_in(gql, "lister@example.com"),
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_staff_load_many_customers_with_a_constant_number_of_queries(gql, token_for, count_statements):
    ids = [(await register(gql, f"batch{n}@example.com", first=f"First{n}"))["id"] for n in range(6)]
    query = """query($ids: [ID!]!) { customers(ids: $ids) { id email firstName lastName phone
        addresses { city } consents { purpose } } }"""
    headers = token_for("agent")
    with count_statements as few:
        await gql.data(query, {"ids": ids[:2]}, headers=headers)
    with count_statements as many:
        data = await gql.data(query, {"ids": ids}, headers=headers)
    assert [c["firstName"] for c in data["customers"]] == [f"First{n}" for n in range(6)]
    assert many.count == few.count


async def test_the_dpo_finds_a_customer_by_email_through_the_blind_index(gql, token_for):
    created = await register(gql, "findme@example.com")
    query = "query($e: String!) { customerByEmail(email: $e) { id firstName } }"
    data = await gql.data(query, {"e": " FindMe@Example.com"}, headers=token_for("dpo"))
    assert data["customerByEmail"]["id"] == created["id"]
    assert (await gql.data(query, {"e": "other@example.com"}, headers=token_for("dpo")))["customerByEmail"] is None


async def test_an_agent_finds_callers_by_phone_however_the_number_is_written(gql, token_for):
    first = await register(gql, "flat1@example.com", phone="+48 600 700 800")
    second = await register(gql, "flat2@example.com", phone="0048-600-700-800")
    await register(gql, "other@example.com", phone="+48 600 700 801")
    query = "query($p: String!) { customersByPhone(phone: $p) { id } }"
    found = (await gql.data(query, {"p": "+48 (600) 700800"}, headers=token_for("agent")))["customersByPhone"]
    assert [c["id"] for c in found] == [first["id"], second["id"]]
    body = await gql.execute(query, {"p": "+48 600 700 800"}, headers=await sign_in(gql, "flat1@example.com"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_whoever_may_not_read_a_customer_cannot_tell_whether_they_exist(gql):
    """node(id) and customer(id) answer an existing, a missing and a malformed customer id alike."""
    from core.ids import to_global_id

    existing = (await register(gql, "b@example.com"))["id"]
    missing = to_global_id("Customer", "99999")
    no_key = to_global_id("Customer", "not-a-number")
    await register(gql, "a@example.com")
    alice = await sign_in(gql, "a@example.com")
    for headers in ({}, alice):
        for query in (NODE, CUSTOMER):
            answers = [await gql.execute(query, {"id": id}, headers=headers) for id in (existing, missing, no_key)]
            assert answers[0] == answers[1] == answers[2], answers
            assert answers[0]["errors"]
