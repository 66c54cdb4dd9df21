"""Rate limits in resolvers: refuse with RATE_LIMITED (HTTP 429 with Retry-After) when a bucket is empty.

Buckets per client (the connecting address, as uvicorn reports it: run behind a proxy with
`--proxy-headers` and `--forwarded-allow-ips`) and per account. An account key is the vault's
keyed hash (apart from its look-up index) of the email or customer key, never the email: Redis holds no personal data.
"""

from __future__ import annotations

from typing import Any

from core.ratelimit import RateBuckets, retry_after
from policies.limits import LimitPolicy
from schema.errors import ClientError
from vault.blind import normalise_email

__all__ = ["RATE_LIMITED", "RateLimited", "RateLimiter", "limit"]

RATE_LIMITED = "RATE_LIMITED"


class RateLimited(ClientError):
    def __init__(self, seconds: int) -> None:
        super().__init__(f"Too many requests: try again in {seconds} seconds.", RATE_LIMITED, retryAfter=seconds)
        self.retry_after = seconds


class RateLimiter:
    def __init__(self, policy: LimitPolicy, buckets: RateBuckets) -> None:
        self.policy = policy
        self.buckets = buckets

    async def check(self, action: str, *, client: str | None, account: str | None) -> None:
        """Take a token from the client's bucket, then the account's; RateLimited when one is empty."""
        for scope, who in (("per_client", client), ("per_account", account)):
            bucket = self.policy.bucket(action, scope)
            if bucket is None or who is None:
                continue
            wait = await self.buckets.take(f"{action}:{scope}:{who}", bucket.capacity, bucket.per_second)
            if wait > 0:
                raise RateLimited(retry_after(wait))

    async def aclose(self) -> None:
        await self.buckets.aclose()


def _client(info: Any) -> str | None:
    request = info.context.request
    client = getattr(request, "client", None)
    return client.host if client is not None else None


async def limit(info: Any, action: str, *, email: str | None = None, customer_key: int | None = None) -> None:
    """Check `action`'s limits for this request's client and the account it is about (if any)."""
    services = info.context.services
    account = None
    if email is not None:
        account = services.vault.blind_index("email", "ratelimit:" + normalise_email(email)).hex()
    elif customer_key is not None:
        account = services.vault.blind_index("email", f"ratelimit:customer:{customer_key}").hex()
    await services.limiter.check(action, client=_client(info), account=account)
