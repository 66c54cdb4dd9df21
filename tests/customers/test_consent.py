"""The consent ledger through the API: grant, withdraw, the current state and the full history."""

from __future__ import annotations

from datetime import timedelta

from policies.privacy import privacy_policy
from tests.customers.helpers import register, sign_in

SET = """mutation($p: String!, $g: Boolean!) { consentSet(purpose: $p, granted: $g) {
    consents { purpose granted updatedAt channel policyVersion method } userErrors { code field message } } }"""
HISTORY = (
    "{ me { consents { purpose granted } consentHistory { purpose granted updatedAt channel policyVersion method } } }"
)


async def test_consent_history_shows_every_change_in_order_with_policy_version_and_channel(gql, clock):
    await register(gql, "consent@example.com")
    headers = await sign_in(gql, "consent@example.com")
    steps = [
        ("MARKETING_EMAIL", True, "web"),
        ("PERSONALIZATION", True, "mobile"),
        ("MARKETING_EMAIL", False, "mobile"),
        ("MARKETING_EMAIL", True, "web"),  # a customer may not name the store channel (an operator's)
    ]
    times = []
    for purpose, granted, channel in steps:
        clock.advance(timedelta(minutes=5))
        times.append(clock.now())
        data = await gql.data(SET, {"p": purpose, "g": granted}, headers={**headers, "X-Channel": channel})
        assert data["consentSet"]["userErrors"] == []
    me = (await gql.data(HISTORY, headers=headers))["me"]
    version = privacy_policy().version
    assert me["consentHistory"] == [
        {
            "purpose": p,
            "granted": g,
            "updatedAt": t.isoformat(),
            "channel": c,
            "policyVersion": version,
            "method": "self-service via api",
        }
        for (p, g, c), t in zip(steps, times, strict=True)
    ]
    assert sorted(me["consents"], key=lambda c: c["purpose"]) == [
        {"purpose": "MARKETING_EMAIL", "granted": True},
        {"purpose": "PERSONALIZATION", "granted": True},
    ]


async def test_withdrawing_is_one_call_like_granting(gql):
    await register(gql, "withdraw@example.com")
    headers = await sign_in(gql, "withdraw@example.com")
    await gql.data(SET, {"p": "ANALYTICS", "g": True}, headers=headers)
    data = await gql.data(SET, {"p": "ANALYTICS", "g": False}, headers=headers)
    assert [(c["purpose"], c["granted"]) for c in data["consentSet"]["consents"]] == [("ANALYTICS", False)]


async def test_an_unknown_purpose_is_refused_and_nothing_is_recorded(gql):
    await register(gql, "unknown@example.com")
    headers = await sign_in(gql, "unknown@example.com")
    data = await gql.data(SET, {"p": "SELL_MY_DATA", "g": True}, headers=headers)
    [error] = data["consentSet"]["userErrors"]
    assert (error["code"], error["field"]) == ("UNKNOWN_PURPOSE", ["purpose"])
    assert (await gql.data(HISTORY, headers=headers))["me"]["consentHistory"] == []


async def test_consent_needs_a_signed_in_customer_and_agents_record_it_on_behalf(gql, token_for):
    customer = await register(gql, "phoned@example.com")
    body = await gql.execute(SET, {"p": "MARKETING_SMS", "g": True})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    on_behalf = """mutation($id: ID!) { consentSet(purpose: "MARKETING_SMS", granted: true, customerId: $id) {
        consents { purpose granted channel method } userErrors { code } } }"""
    data = await gql.data(
        on_behalf, {"id": customer["id"]}, headers={**token_for("agent", subject="agent-7"), "X-Channel": "call-center"}
    )
    [consent] = data["consentSet"]["consents"]
    assert (consent["channel"], consent["granted"]) == ("call-center", True)
    assert "agent-7" in consent["method"]
    body = await gql.execute(on_behalf, {"id": customer["id"]}, headers=await sign_in(gql, "phoned@example.com"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_no_consent_is_recorded_for_an_erased_customer(gql, engine, runtime, token_for):
    from commerce.customers.service import erase
    from core.ids import from_global_id

    customer = await register(gql, "erased-consent@example.com")
    headers = await sign_in(gql, "erased-consent@example.com")
    await gql.data(SET, {"p": "ANALYTICS", "g": True}, headers=headers)
    await erase(engine, runtime.services.vault, int(from_global_id(customer["id"])[1]))

    data = await gql.data(SET, {"p": "MARKETING_EMAIL", "g": True}, headers=headers)
    assert [e["code"] for e in data["consentSet"]["userErrors"]] == ["NOT_FOUND"]
    on_behalf = """mutation($id: ID!) { consentSet(purpose: "MARKETING_SMS", granted: true, customerId: $id) {
        userErrors { code } } }"""
    data = await gql.data(on_behalf, {"id": customer["id"]}, headers={**token_for("agent"), "X-Channel": "call-center"})
    assert [e["code"] for e in data["consentSet"]["userErrors"]] == ["NOT_FOUND"]
    history = (await gql.data(HISTORY, headers=headers))["me"]["consentHistory"]
    assert [(c["purpose"], c["granted"]) for c in history] == [("ANALYTICS", True)]  # kept as proof, nothing added


async def test_an_agent_with_a_long_identity_provider_subject_records_consent(gql, token_for):
    customer = await register(gql, "long-agent@example.com")
    agent = "agent-" + "x" * 90  # e.g. an IdP's `sub`: longer than the ledger's method column
    on_behalf = """mutation($id: ID!) { consentSet(purpose: "MARKETING_SMS", granted: true, customerId: $id) {
        consents { purpose granted method } userErrors { code } } }"""
    data = await gql.data(
        on_behalf, {"id": customer["id"]}, headers={**token_for("agent", subject=agent), "X-Channel": "call-center"}
    )
    [consent] = data["consentSet"]["consents"]
    assert consent["granted"] and consent["method"].startswith("recorded by agent agent-xxx")
    assert len(consent["method"]) <= 100  # what PostgreSQL's column holds (SQLite would have kept more)


async def test_two_changes_in_the_same_instant_keep_the_order_they_were_made_in(gql):
    await register(gql, "same-instant@example.com")
    headers = await sign_in(gql, "same-instant@example.com")
    for granted in (True, False, True, False):  # the frozen clock never moves: every row has one timestamp
        await gql.data(SET, {"p": "MARKETING_SMS", "g": granted}, headers=headers)
    me = (await gql.data(HISTORY, headers=headers))["me"]
    assert [c["granted"] for c in me["consentHistory"]] == [True, False, True, False]
    assert len({c["updatedAt"] for c in me["consentHistory"]}) == 1
    assert me["consents"] == [{"purpose": "MARKETING_SMS", "granted": False}]
