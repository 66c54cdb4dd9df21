"""Reads by a batch of ids bind the ids as one list (core/id_lists.py): any length, duplicates, none."""

from __future__ import annotations

from sqlalchemy import func, select

from commerce.catalog import models as m
from commerce.catalog import service as catalog
from commerce.inventory.service import stock_by_variant_ids
from commerce.pricing.price_book import price_entries_by_variant_ids
from core.db import ReadScope


async def test_a_batch_reads_every_id_once_whatever_its_length(engine):
    async with engine.connect() as conn:
        variant_ids = list((await conn.execute(select(m.ProductVariant.id).order_by(m.ProductVariant.id))).scalars())
        product_ids = list((await conn.execute(select(m.Product.id).order_by(m.Product.id))).scalars())
        published = (
            await conn.execute(select(func.count()).select_from(m.Product).where(m.Product.published))
        ).scalar()
    reads = ReadScope(engine)
    try:
        assert await catalog.products_by_ids(reads, []) == {}
        assert await stock_by_variant_ids(reads, []) == {}
        one = product_ids[0]
        assert list(await catalog.products_by_ids(reads, [one, one, one])) == [one]
        assert len(await catalog.products_by_ids(reads, [*product_ids, 10**9])) == published
        grouped = await catalog.variants_by_product_ids(reads, product_ids)
        assert sorted(v.id for vs in grouped.values() for v in vs) == sorted(
            v.id for v in (await catalog.variants_by_ids(reads, variant_ids)).values()
        )
        prices = await price_entries_by_variant_ids(reads, variant_ids, "PLN")
        assert prices and set(prices) <= set(variant_ids)
        stock = await stock_by_variant_ids(reads, variant_ids[:3] + variant_ids[:1])
        assert list(stock) == variant_ids[:3]
        assert all(level.variant_id == vid for vid, levels in stock.items() for level in levels)
    finally:
        await reads.aclose()
