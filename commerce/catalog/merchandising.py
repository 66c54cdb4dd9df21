"""What a product page shows beyond the basics: media, options, tags, and collections.

Batched by id for the per-request loaders (one statement per kind, whatever the page size).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import models as m
from commerce.catalog.entities import Collection, Media, ProductOption, SelectedOption

__all__ = [
    "collection_by_handle",
    "collections_by_ids",
    "media_by_product_ids",
    "options_by_product_ids",
    "page_collections",
    "selected_options_by_variant_ids",
    "tags_by_product_ids",
]

_COLLECTION_COLUMNS = (
    m.Collection.id,
    m.Collection.handle,
    m.Collection.title,
    m.Collection.description,
    m.Collection.kind,
    m.Collection.rules,
    m.Collection.image_url,
)


async def media_by_product_ids(engine: AsyncEngine, product_ids: Sequence[int]) -> dict[int, list[Media]]:
    stmt = (
        select(
            m.ProductMedia.id,
            m.ProductMedia.product_id,
            m.ProductMedia.url,
            m.ProductMedia.alt_text,
            m.ProductMedia.width,
            m.ProductMedia.height,
            m.ProductMedia.position,
        )
        .where(m.ProductMedia.product_id.in_(product_ids))
        .order_by(m.ProductMedia.product_id, m.ProductMedia.position, m.ProductMedia.id)
    )
    grouped: dict[int, list[Media]] = {pid: [] for pid in product_ids}
    async with engine.connect() as conn:
        for row in await conn.execute(stmt):
            grouped[row[1]].append(Media(*row))
    return grouped


async def options_by_product_ids(engine: AsyncEngine, product_ids: Sequence[int]) -> dict[int, list[ProductOption]]:
    stmt = (
        select(m.ProductOption.id, m.ProductOption.product_id, m.ProductOption.name, m.ProductOption.values)
        .where(m.ProductOption.product_id.in_(product_ids))
        .order_by(m.ProductOption.product_id, m.ProductOption.position, m.ProductOption.id)
    )
    grouped: dict[int, list[ProductOption]] = {pid: [] for pid in product_ids}
    async with engine.connect() as conn:
        for option_id, product_id, name, values in await conn.execute(stmt):
            grouped[product_id].append(ProductOption(option_id, product_id, name, tuple(values or ())))
    return grouped


async def selected_options_by_variant_ids(
    engine: AsyncEngine, variant_ids: Sequence[int]
) -> dict[int, list[SelectedOption]]:
    """Each variant's option values, in its product's option order: `Size: M`, `Colour: Black`."""
    stmt = (
        select(m.VariantOptionValue.variant_id, m.ProductOption.name, m.VariantOptionValue.value)
        .join(m.ProductOption, m.ProductOption.id == m.VariantOptionValue.option_id)
        .where(m.VariantOptionValue.variant_id.in_(variant_ids))
        .order_by(m.VariantOptionValue.variant_id, m.ProductOption.position, m.ProductOption.id)
    )
    grouped: dict[int, list[SelectedOption]] = {vid: [] for vid in variant_ids}
    async with engine.connect() as conn:
        for variant_id, name, value in await conn.execute(stmt):
            grouped[variant_id].append(SelectedOption(name, value))
    return grouped


async def tags_by_product_ids(engine: AsyncEngine, product_ids: Sequence[int]) -> dict[int, list[str]]:
    stmt = (
        select(m.ProductTag.product_id, m.ProductTag.tag)
        .where(m.ProductTag.product_id.in_(product_ids))
        .order_by(m.ProductTag.product_id, m.ProductTag.tag)
    )
    grouped: dict[int, list[str]] = {pid: [] for pid in product_ids}
    async with engine.connect() as conn:
        for product_id, tag in await conn.execute(stmt):
            grouped[product_id].append(tag)
    return grouped


def _collection(row: Sequence[object]) -> Collection:
    rules = row[5] if isinstance(row[5], dict) else {}
    return Collection(
        id=int(row[0]),  # type: ignore[call-overload]
        handle=str(row[1]),
        title=str(row[2]),
        description=str(row[3]),
        kind=str(row[4]),
        rules={str(k): str(v) for k, v in rules.items()},
        image_url=str(row[6]) if row[6] is not None else None,
    )


async def collections_by_ids(engine: AsyncEngine, ids: Sequence[int]) -> dict[int, Collection]:
    stmt = select(*_COLLECTION_COLUMNS).where(m.Collection.id.in_(ids), m.Collection.published.is_(True))
    async with engine.connect() as conn:
        return {row[0]: _collection(row) for row in await conn.execute(stmt)}


async def collection_by_handle(engine: AsyncEngine, handle: str) -> Collection | None:
    stmt = select(*_COLLECTION_COLUMNS).where(m.Collection.handle == handle, m.Collection.published.is_(True))
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).first()
    return _collection(row) if row else None


async def page_collections(
    engine: AsyncEngine, *, first: int, after_id: int | None = None
) -> tuple[list[Collection], bool]:
    """Published collections in id order (keyset) and whether more follow."""
    stmt = select(*_COLLECTION_COLUMNS).where(m.Collection.published.is_(True))
    if after_id is not None:
        stmt = stmt.where(m.Collection.id > after_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt.order_by(m.Collection.id).limit(first + 1))).all()
    return [_collection(row) for row in rows[:first]], len(rows) > first
