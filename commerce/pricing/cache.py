"""What pricing reads on every cart change, kept per process: promotions, prices, variant scopes.

Promotions and the price book are read-mostly, yet every cart change re-read them (three or
four statements before the pricing engine ran). `PricingCache` keeps them until told that they
changed: the gateway empties it when the broadcast says `catalog` (products, variants, prices)
or `pricing` (promotions, their usage) changed, PostgreSQL triggers sending those for every
writer to every replica (migrations 0050, 0051). A load that raced with such a change is not
kept (the generation moved), so a change is never hidden for longer than the broadcast takes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from commerce.pricing.engine import Promotion, normalize_code

__all__ = ["PricingCache"]

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 200_000  # per kind (per currency for prices); past it the kind is emptied and refilled as carts ask


_ABSENT: Any = object()  # not in the cache (a cached None says: known not to exist)


class PricingCache:
    def __init__(self) -> None:
        self.generation = 0
        self._promotions: list[Promotion] | None = None
        self._prices: dict[str, dict[int, Decimal | None]] = {}  # by currency, then variant
        self._scopes: dict[int, tuple[int, int | None] | None] = {}

    def clear(self) -> None:
        self.generation += 1
        self._promotions = None
        self._prices = {}
        self._scopes = {}

    async def promotions(
        self, codes: Iterable[str], load_active: Callable[[], Awaitable[list[Promotion]]]
    ) -> list[Promotion]:
        """The active automatic promotions plus those of `codes`, as `load_promotions` answers."""
        active = self._promotions
        if active is None:
            generation = self.generation
            active = await load_active()
            if generation == self.generation:
                self._promotions = active
        wanted = {normalize_code(code) for code in codes}
        return [p for p in active if p.code is None or p.code in wanted]

    async def prices(
        self,
        variant_ids: Sequence[int],
        currency: str,
        load: Callable[[list[int]], Awaitable[dict[int, Decimal]]],
    ) -> dict[int, Decimal]:
        book = self._prices.get(currency)
        if book is None:
            book = self._prices[currency] = {}
        return await self._many(book, variant_ids, load)

    async def scopes(
        self, variant_ids: Sequence[int], load: Callable[[list[int]], Awaitable[dict[int, tuple[int, int | None]]]]
    ) -> dict[int, tuple[int, int | None]]:
        return await self._many(self._scopes, variant_ids, load)

    async def _many(
        self, cache: dict[K, V | None], keys: Sequence[K], load: Callable[[list[K]], Awaitable[dict[K, V]]]
    ) -> dict[K, V]:
        """The values of `keys` that exist, from the cache, loading (and keeping) the ones it lacks.

        One pass over the keys: it runs for every line of a cart on every change."""
        found: dict[K, V] = {}
        missing: list[K] = []
        for key in keys:
            value = cache.get(key, _ABSENT)
            if value is _ABSENT:
                missing.append(key)
            elif value is not None:
                found[key] = value
        if missing:
            missing = list(dict.fromkeys(missing))
            generation = self.generation
            loaded = await load(missing)
            fresh = {key: loaded.get(key) for key in missing}  # None: known to be absent
            found.update((key, value) for key, value in fresh.items() if value is not None)
            if generation == self.generation:
                if len(cache) + len(fresh) > MAX_ENTRIES:
                    cache.clear()
                cache.update(fresh)
        return found
