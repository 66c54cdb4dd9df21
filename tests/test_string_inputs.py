"""Strings no database can take end as BAD_USER_INPUT, through any argument, literal or variable."""

from __future__ import annotations

import json
from typing import Any

import pytest

NUL = "caf\x00e"
SURROGATE = "caf\ud800e"  # JSON "\ud800": valid JSON, no valid UTF-8
HUGE = "k" * 20_000

# (document with $s, how $s is used): every kind of string argument the API has
SITES = {
    "search": "query($s: String) { products(first: 1, search: $s) { edges { node { id } } } }",
    "categorySlug": "query($s: String) { products(first: 1, filter: {categorySlug: $s}) { edges { node { id } } } }",
    "slug": "query($s: String) { product(slug: $s) { id } }",
    "after": "query($s: String) { products(first: 1, after: $s) { edges { node { id } } } }",
    "node id": "query($s: ID!) { node(id: $s) { id } }",
    "cart id": "query($s: ID!) { cart(id: $s) { id } }",
    "email": """mutation($s: String!) { customerAccessTokenCreate(email: $s, password: "pw-pw-pw-pw") {
        userErrors { code } } }""",
    "password": """mutation($s: String!) { customerAccessTokenCreate(email: "a@example.com", password: $s) {
        userErrors { code } } }""",
    "discount code": """mutation($s: String!) { cartDiscountCodesUpdate(cartId: "Q2FydDp4", codes: [$s]) {
        userErrors { code } } }""",
}


async def _post(http: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Encoded as a browser would (\\u escapes), so that a lone surrogate reaches the server."""
    body = json.dumps({"query": query, "variables": variables}, ensure_ascii=True)
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400), response.text
    return response.json()


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


@pytest.mark.parametrize("site", list(SITES))
@pytest.mark.parametrize("value", [NUL, SURROGATE, HUGE], ids=["NUL", "lone surrogate", "20,000 characters"])
async def test_a_string_variable_no_database_can_take_is_bad_user_input(http, site: str, value: str) -> None:
    body = await _post(http, SITES[site], {"s": value})
    # (over HTTP the JSON body with a lone surrogate is refused whole, before GraphQL: BAD_REQUEST)
    assert _codes(body) == ["BAD_REQUEST" if value == SURROGATE else "BAD_USER_INPUT"], body
    assert "data" not in body or body["data"] is None


@pytest.mark.parametrize("literal", ["caf\\u0000e", HUGE], ids=["NUL", "20,000 characters"])
async def test_a_string_literal_no_database_can_take_is_bad_user_input(http, literal: str) -> None:
    body = await _post(http, '{ products(first: 1, search: "' + literal + '") { edges { node { id } } } }')
    assert _codes(body) == ["BAD_USER_INPUT"], body


async def test_a_long_search_is_refused_naming_the_argument(http) -> None:
    body = await _post(http, SITES["search"], {"s": "kettle " * 40})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == ["search"]


async def test_ordinary_unicode_still_searches(http) -> None:
    body = await _post(http, SITES["search"], {"s": "zażółć 漢字 🙂"})
    assert not body.get("errors"), body
    assert body["data"]["products"]["edges"] == []


async def test_over_websocket_a_lone_surrogate_in_a_subscriptions_variables_is_bad_user_input(runtime) -> None:
    from tests.live_server import serving
    from tests.policy.test_websocket import _next, _send, _socket

    async with serving(runtime) as port, _socket(port, {}) as ws:
        for n, value in enumerate((SURROGATE, NUL)):
            await _send(ws, "subscription($s: ID!) { cartUpdated(cartId: $s) { id } }", {"s": value}, id=str(n))
            message = await _next(ws)
            assert message["type"] == "error", message
            assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"]
