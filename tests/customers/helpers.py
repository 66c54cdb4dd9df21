"""Shared steps for customer tests: register through the API and sign in."""

from __future__ import annotations

from typing import Any

REGISTER = """
mutation($input: CustomerRegisterInput!) {
  customerRegister(input: $input) { customer { id email firstName lastName phone } userErrors { code field message } }
}
"""
SIGN_IN = """
mutation($email: String!, $password: String!) {
  customerAccessTokenCreate(email: $email, password: $password) {
    accessToken { token expiresAt } userErrors { code field message }
  }
}
"""
PASSWORD = "correct horse battery"


async def register(
    gql: Any, email: str, first: str = "Ada", last: str = "Lovelace", phone: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    data = await gql.data(
        REGISTER,
        {"input": {"email": email, "password": password, "firstName": first, "lastName": last, "phone": phone}},
    )
    payload = data["customerRegister"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["customer"]


async def sign_in(gql: Any, email: str, password: str = PASSWORD) -> dict[str, str]:
    """The Authorization header of a signed-in customer."""
    payload = (await gql.data(SIGN_IN, {"email": email, "password": password}))["customerAccessTokenCreate"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return {"Authorization": f"Bearer {payload['accessToken']['token']}"}
