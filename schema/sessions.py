"""Issuing a customer's access token in their current token generation (see commerce/customers/sessions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from commerce.customers import sessions
from policies.principal import Principal, Role

__all__ = ["issue_customer_token"]


async def issue_customer_token(info: Any, customer_key: int, generation: int | None = None) -> Any:
    """A new token for the customer (an `IssuedToken`), valid until signed out or the password changes."""
    services = info.context.services
    if generation is None:
        generation = await sessions.token_generation(services.engine, customer_key)
    ttl = timedelta(seconds=info.context.settings.customer_token_ttl_seconds)
    return services.tokens.issue(Principal(Role.CUSTOMER, subject=str(customer_key)), ttl, generation)
