"""The DPO's views behind the console: what an erasure keeps and why, and who accessed a person."""

from __future__ import annotations

from typing import Any

from tests.customers.helpers import register

RULES = "{ retentionRules { category onErasure retainedFor legalBasis reason } }"
HISTORY = "query($id: ID!) { customerAccessLog(customerId: $id) { actor role channel operation outcome } }"
LOOKUP = 'query { customerByEmail(email: "eve@example.com") { id firstName } }'


async def test_the_retention_rules_say_what_an_erasure_keeps_and_on_which_basis(gql: Any, token_for: Any) -> None:
    rules = {r["category"]: r for r in (await gql.data(RULES, headers=token_for("dpo")))["retentionRules"]}
    assert rules["profile"]["onErasure"] == "erase" and rules["profile"]["reason"] == ""
    kept = [r for r in rules.values() if r["onErasure"] == "retain"]
    assert kept and all(r["reason"] and "17(3)" in r["legalBasis"] for r in kept)  # each kept category says why


async def test_the_access_log_shows_who_read_a_person_granted_or_refused_newest_first(gql: Any, token_for: Any) -> None:
    eve = await register(gql, "eve@example.com", first="Eve")
    await gql.data(LOOKUP, headers=token_for("agent", subject="agent-7"))
    refused = await gql.execute(
        "query($id: ID!) { customer(id: $id) { email } }",
        {"id": eve["id"]},
        headers=token_for("staff", subject="s-1", location="ST-WAW"),
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    history = (await gql.data(HISTORY, {"id": eve["id"]}, headers=token_for("dpo", subject="dpo-1")))[
        "customerAccessLog"
    ]
    assert [(h["actor"], h["outcome"]) for h in history] == [("s-1", "denied"), ("agent-7", "allowed")]
    assert all("eve@example.com" not in str(h) for h in history)  # the log names operations, never the data


async def test_another_customers_access_log_is_not_for_a_customer(gql: Any, token_for: Any) -> None:
    eve = await register(gql, "eve@example.com", first="Eve")
    body = await gql.execute(HISTORY, {"id": eve["id"]}, headers=token_for("customer", subject="1"))
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
