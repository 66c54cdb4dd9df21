"""Per-request DataLoaders: every list of N objects costs one query per kind, not N."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import merchandising
from commerce.catalog import service as catalog
from commerce.customers import service as customers
from commerce.inventory import service as inventory
from commerce.pricing.price_book import price_entries_by_variant_ids
from vault.service import Vault

__all__ = ["Loaders"]

K = TypeVar("K")
V = TypeVar("V")


def _loader(fetch: Callable[[Sequence[K]], Awaitable[dict[K, V]]], default: Any = None) -> DataLoader:
    async def batch(keys: list[K]) -> list[V | None]:
        found = await fetch(keys)
        return [found.get(key, default) for key in keys]

    return DataLoader(batch, max_batch_size=1000)


async def _channels_by_code(engine: AsyncEngine) -> dict[str, Any]:
    return {c.code: c for c in await catalog.list_channels(engine)}


class Loaders:
    """Created per request (never shared: a loader caches what one principal may see)."""

    def __init__(self, engine: AsyncEngine, *, currency: str, vault: Vault | None = None) -> None:
        self.categories: DataLoader = _loader(lambda ids: catalog.categories_by_ids(engine, ids))
        self.products: DataLoader = _loader(lambda ids: catalog.products_by_ids(engine, ids))
        self.variants: DataLoader = _loader(lambda ids: catalog.variants_by_ids(engine, ids))
        self.variants_by_product: DataLoader = _loader(lambda ids: catalog.variants_by_product_ids(engine, ids), [])
        self.locations: DataLoader = _loader(lambda ids: catalog.locations_by_ids(engine, ids))
        self.channels_by_code: DataLoader = _loader(lambda codes: _channels_by_code(engine))
        self.stock: DataLoader = _loader(lambda ids: inventory.stock_by_variant_ids(engine, ids), [])
        # the channel currency's price book entry (price and compare-at price) per variant
        self.prices: DataLoader = _loader(lambda ids: price_entries_by_variant_ids(engine, ids, currency))
        self.media: DataLoader = _loader(lambda ids: merchandising.media_by_product_ids(engine, ids), [])
        self.options: DataLoader = _loader(lambda ids: merchandising.options_by_product_ids(engine, ids), [])
        self.selected_options: DataLoader = _loader(
            lambda ids: merchandising.selected_options_by_variant_ids(engine, ids), []
        )
        self.tags: DataLoader = _loader(lambda ids: merchandising.tags_by_product_ids(engine, ids), [])
        self.collections: DataLoader = _loader(lambda ids: merchandising.collections_by_ids(engine, ids))
        if vault is not None:  # personal data: decrypted per batch, one query for rows and one for keys
            self.customer_profiles: DataLoader = _loader(lambda ids: customers.profiles_by_ids(engine, vault, ids))
            self.customer_consents: DataLoader = _loader(lambda ids: customers.consents_by_ids(engine, vault, ids), [])
            self.customer_consent_history: DataLoader = _loader(
                lambda ids: customers.consent_history_by_ids(engine, vault, ids), []
            )
