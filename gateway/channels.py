"""The request's sales channel, from the `X-Channel` header, cached briefly per process.

Whoever sends the header names the channel, and prices, promotions, discount codes and the
order's recorded channel follow it, so the operators' channels are served only to the roles
`[channels]` in policies/access.toml names (`channel_refusal`), over HTTP and WebSocket alike.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog.entities import Channel
from commerce.catalog.service import list_channels
from policies.access import AccessPolicy
from policies.principal import Principal, Role

__all__ = ["CHANNEL_NOT_ALLOWED", "DEFAULT_CHANNEL", "ChannelDirectory", "channel_refusal"]

DEFAULT_CHANNEL = "web"
CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"


def channel_refusal(policy: AccessPolicy, principal: Principal, channel: Channel) -> str | None:
    """Why `principal` may not be served through `channel`, naming who may; None when it may."""
    if policy.may_use_channel(principal, channel.kind):
        return None
    roles = policy.channel_roles(channel.kind) or frozenset()
    who = " or ".join(role.value for role in Role if role in roles)
    return f"Only {who} may use the {channel.code!r} channel: send another X-Channel (default {DEFAULT_CHANNEL!r})."


class ChannelDirectory:
    """Channels change rarely; reading them once a minute spares a query per request."""

    def __init__(self, engine: AsyncEngine, ttl_seconds: float = 60.0) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._by_code: dict[str, Channel] = {}
        self._loaded_at = float("-inf")

    async def get(self, code: str | None) -> Channel | None:
        code = (code or DEFAULT_CHANNEL).strip().lower()
        if time.monotonic() - self._loaded_at > self._ttl or code not in self._by_code:
            await self.refresh()
        return self._by_code.get(code)

    async def refresh(self) -> None:
        self._by_code = {c.code: c for c in await list_channels(self._engine)}
        self._loaded_at = time.monotonic()
