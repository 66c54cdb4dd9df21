"""`cartUpdated`'s shared half: one reader per followed cart, however many subscribers wait on it.

Before, every subscription re-read its cart on every change and priced it again: hundreds of
subscriptions on one cart (anyone holding a guest cart's id may open them) made one change
cost hundreds of reads and pricings, and every other request waited behind them. Now a cart
followed in this process has one `_Hub`: one broadcaster subscription, one read per change,
one pricing per change and channel (a future the subscribers share); each subscriber only
checks its own access to the record and renders it. The subscribers per cart are bounded.

The hub follows a merge as the subscriptions did: when the cart it reads has become another
(a guest cart joined a customer's), it listens to that cart's changes from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from commerce.cart import service
from commerce.pricing.engine import PricedCart
from core.broadcast import Broadcaster

__all__ = ["CartFeeds", "TooManyFollowers"]

Read = Callable[[str], Awaitable[service.Cart | None]]  # the cart now (following merges), None when gone


class TooManyFollowers(Exception):
    """This cart already has as many subscribers in this process as `ws_max_subscriptions_per_cart`."""


class _Hub:
    def __init__(self, cart_id: str, broadcaster: Broadcaster, read: Read) -> None:
        self.cart_id = cart_id
        self.followers = 0
        self.current: service.Cart | None = None
        self.serial = 0  # bumped per new state: a follower waits for a serial it has not seen
        self.gone = False
        self.error: Exception | None = None
        self.prices: dict[tuple[str, int, str], asyncio.Future[PricedCart]] = {}
        self._changed = asyncio.Condition()
        self._broadcaster, self._read = broadcaster, read
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            while True:
                # Subscribe first, then read: a change between the two is not missed.
                following = self.current.id if self.current is not None else self.cart_id
                async with self._broadcaster.subscribe(f"cart:{following}") as messages:
                    while True:
                        cart = await self._read(self.cart_id)
                        if cart is None:
                            await self._publish(None)
                            return
                        if self.current is None or (cart.id, cart.version) != (self.current.id, self.current.version):
                            await self._publish(cart)
                        if cart.id != following:
                            break  # merged into another cart: listen to that one
                        await anext(messages)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every follower ends with it (masked), as a failed read ended each before
            self.error = error
            await self._publish(None)

    async def _publish(self, cart: service.Cart | None) -> None:
        async with self._changed:
            self.current, self.gone = cart, cart is None
            self.serial += 1
            self.prices.clear()
            self._changed.notify_all()

    async def next(self, seen: int) -> tuple[int, service.Cart | None]:
        """The first state after serial `seen` (None: the cart is gone)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.serial > seen)
            if self.error is not None:
                raise self.error
            return self.serial, self.current

    def priced(self, cart: service.Cart, channel: str, price: Callable[[], Awaitable[PricedCart]]) -> Any:
        """The cart priced for `channel`, computed once for every follower of this state."""
        key = (cart.id, cart.version, channel)
        if key not in self.prices:
            self.prices[key] = asyncio.ensure_future(price())
        return self.prices[key]


class CartFeeds:
    """The hubs of the carts followed in this process (one per process, shared by every request)."""

    def __init__(self, broadcaster: Broadcaster, max_followers: int) -> None:
        self._broadcaster = broadcaster
        self._max = max_followers
        self._hubs: dict[str, _Hub] = {}

    def followers(self, cart_id: str) -> int:
        hub = self._hubs.get(cart_id)
        return hub.followers if hub else 0

    @asynccontextmanager
    async def follow(self, cart_id: str, read: Read) -> AsyncIterator[_Hub]:
        """A share of `cart_id`'s hub while the subscription lasts; `TooManyFollowers` beyond the bound."""
        hub = self._hubs.get(cart_id)
        if hub is None:
            hub = self._hubs[cart_id] = _Hub(cart_id, self._broadcaster, read)
        if hub.followers >= self._max:
            raise TooManyFollowers(cart_id)
        hub.followers += 1
        hub.start()
        try:
            yield hub
        finally:
            hub.followers -= 1
            if hub.followers == 0 and self._hubs.get(cart_id) is hub:
                del self._hubs[cart_id]
                await hub.stop()
