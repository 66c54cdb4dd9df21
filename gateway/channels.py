"""The request's sales channel, from the `X-Channel` header, cached briefly per process."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog.entities import Channel
from commerce.catalog.service import list_channels

__all__ = ["DEFAULT_CHANNEL", "ChannelDirectory"]

DEFAULT_CHANNEL = "web"


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
