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
from typing import TypeVar

from commerce.pricing.engine import Promotion, normalize_code

__all__ = ["PricingCache"]

K = TypeVar("K")
V = TypeVar("V")

MAX_ENTRIES = 200_000  # per kind; past it the kind is emptied and refilled as carts ask


class PricingCache:
    def __init__(self) -> None:
        self.generation = 0
        self._promotions: list[Promotion] | None = None
        self._prices: dict[tuple[int, str], Decimal | None] = {}
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
        found = await self._many(
            self._prices, [(v, currency) for v in variant_ids], lambda keys: _by_variant(load, keys, currency)
        )
        return {variant: price for (variant, _), price in found.items() if price is not None}

    async def scopes(
        self, variant_ids: Sequence[int], load: Callable[[list[int]], Awaitable[dict[int, tuple[int, int | None]]]]
    ) -> dict[int, tuple[int, int | None]]:
        found = await self._many(self._scopes, list(variant_ids), load)
        return {variant: scope for variant, scope in found.items() if scope is not None}

    async def _many(
        self, cache: dict[K, V | None], keys: list[K], load: Callable[[list[K]], Awaitable[dict[K, V]]]
    ) -> dict[K, V | None]:
        missing = [key for key in dict.fromkeys(keys) if key not in cache]
        result = {key: cache[key] for key in keys if key in cache}
        if missing:
            generation = self.generation
            loaded = await load(missing)
            fresh = {key: loaded.get(key) for key in missing}  # None: known to be absent
            result.update(fresh)
            if generation == self.generation:
                if len(cache) + len(fresh) > MAX_ENTRIES:
                    cache.clear()
                cache.update(fresh)
        return result


async def _by_variant(
    load: Callable[[list[int]], Awaitable[dict[int, Decimal]]], keys: list[tuple[int, str]], currency: str
) -> dict[tuple[int, str], Decimal]:
    found = await load([variant for variant, _ in keys])
    return {(variant, currency): price for variant, price in found.items()}
