"""Token buckets: in-process, or shared by every replica through Redis.

A bucket holds up to `capacity` tokens and gains `rate` tokens a second; a request takes one,
and is refused while the bucket is empty, with the seconds until a token is back. The Redis
bucket is updated by one Lua script (atomic on the server), so replicas never race on it;
keys expire once a bucket would be full again, so idle clients cost nothing.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["MemoryBuckets", "RateBuckets", "RedisBuckets", "retry_after"]


class RateBuckets(Protocol):
    async def take(self, key: str, capacity: int, rate: float) -> float:
        """0 when a token was taken; otherwise the seconds to wait before one is available."""
        ...

    async def aclose(self) -> None: ...


class MemoryBuckets:
    """One process's buckets, the least recently used dropped past `max_keys` (memory stays bounded)."""

    def __init__(self, max_keys: int = 100_000, now: Callable[[], float] = time.monotonic) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._max_keys = max_keys
        self._now = now

    async def take(self, key: str, capacity: int, rate: float) -> float:
        now = self._now()
        tokens, at = self._buckets.pop(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - at) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def aclose(self) -> None:
        self._buckets.clear()


_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1)
return tostring(wait)
"""


class RedisBuckets:
    """Buckets every replica shares; the time is the Redis server's, so replicas' clocks never disagree."""

    def __init__(self, url: str, prefix: str = "omnigate:") -> None:
        import redis.asyncio as redis

        self._client: Any = redis.Redis.from_url(url)
        self._script = self._client.register_script(_TAKE)
        self._prefix = prefix + "rl:"

    async def take(self, key: str, capacity: int, rate: float) -> float:
        wait = await self._script(keys=[self._prefix + key], args=[capacity, repr(rate)])
        return float(wait)

    async def aclose(self) -> None:
        await self._client.aclose()


def retry_after(wait: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))
