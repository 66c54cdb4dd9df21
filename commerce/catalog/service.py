"""Reading the catalog. Plain async functions over an engine, batched by id for the loaders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from commerce.catalog import listing
from commerce.catalog import models as m
from commerce.catalog.entities import Category, Channel, Location, Product, Variant
from commerce.catalog.listing import ProductQuery, count_products
from core.db import Connectable

__all__ = [
    "ProductQuery",
    "categories_by_ids",
    "count_products",
    "list_channels",
    "list_locations",
    "location_ids_by_codes",
    "locations_by_ids",
    "page_products",
    "product_by_slug",
    "products_by_ids",
    "sku_and_location_code",
    "variant_ids_by_skus",
    "variant_scopes",
    "variants_by_ids",
    "variants_by_product_ids",
]

_PRODUCT_COLUMNS = (m.Product.id, m.Product.slug, m.Product.name, m.Product.description, m.Product.category_id)
_VARIANT_COLUMNS = (m.ProductVariant.id, m.ProductVariant.product_id, m.ProductVariant.sku, m.ProductVariant.name)
_LOCATION_COLUMNS = (
    m.Location.id,
    m.Location.code,
    m.Location.name,
    m.Location.kind,
    m.Location.city,
    m.Location.click_and_collect,
)


async def list_channels(engine: Connectable) -> list[Channel]:
    stmt = select(m.Channel.id, m.Channel.code, m.Channel.name, m.Channel.kind, m.Channel.currency).order_by(
        m.Channel.id
    )
    async with engine.connect() as conn:
        return [Channel(*row) for row in await conn.execute(stmt)]


async def list_locations(engine: Connectable, kind: str | None = None) -> list[Location]:
    stmt = select(*_LOCATION_COLUMNS).order_by(m.Location.id)
    if kind is not None:
        stmt = stmt.where(m.Location.kind == kind)
    async with engine.connect() as conn:
        return [Location(*row) for row in await conn.execute(stmt)]


async def locations_by_ids(engine: Connectable, ids: Sequence[int]) -> dict[int, Location]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(*_LOCATION_COLUMNS).where(m.Location.id.in_(ids)))
        return {row[0]: Location(*row) for row in rows}


async def location_ids_by_codes(engine: AsyncEngine, codes: Iterable[str]) -> dict[str, int]:
    """Location id per code, for the codes that exist (stock counts name locations by code)."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(m.Location.code, m.Location.id).where(m.Location.code.in_(set(codes))))
        return {code: id_ for code, id_ in rows}


async def categories_by_ids(engine: Connectable, ids: Sequence[int]) -> dict[int, Category]:
    stmt = select(m.Category.id, m.Category.slug, m.Category.name).where(m.Category.id.in_(ids))
    async with engine.connect() as conn:
        return {row[0]: Category(*row) for row in await conn.execute(stmt)}


async def products_by_ids(engine: Connectable, ids: Sequence[int]) -> dict[int, Product]:
    stmt = select(*_PRODUCT_COLUMNS).where(m.Product.id.in_(ids), m.Product.published.is_(True))
    async with engine.connect() as conn:
        return {row[0]: Product(*row) for row in await conn.execute(stmt)}


async def product_by_slug(engine: Connectable, slug: str) -> Product | None:
    stmt = select(*_PRODUCT_COLUMNS).where(m.Product.slug == slug, m.Product.published.is_(True))
    async with engine.connect() as conn:
        row = (await conn.execute(stmt)).first()
    return Product(*row) if row else None


async def variants_by_ids(engine: Connectable, ids: Sequence[int]) -> dict[int, Variant]:
    stmt = select(*_VARIANT_COLUMNS).where(m.ProductVariant.id.in_(ids), m.ProductVariant.published.is_(True))
    async with engine.connect() as conn:
        return {row[0]: Variant(*row) for row in await conn.execute(stmt)}


async def sku_and_location_code(
    conn: AsyncSession | AsyncConnection, variant_id: int, location_id: int
) -> tuple[str | None, str | None]:
    """A variant's SKU and a location's code in one query, on the caller's connection (its transaction)."""
    row = (
        await conn.execute(
            select(
                select(m.ProductVariant.sku).where(m.ProductVariant.id == variant_id).scalar_subquery(),
                select(m.Location.code).where(m.Location.id == location_id).scalar_subquery(),
            )
        )
    ).one()
    return row[0], row[1]


async def variant_ids_by_skus(engine: AsyncEngine, skus: Iterable[str]) -> dict[str, int]:
    """Variant id per SKU, published or not (a warehouse counts both), for the SKUs that exist."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(m.ProductVariant.sku, m.ProductVariant.id).where(m.ProductVariant.sku.in_(set(skus)))
        )
        return {sku: id_ for sku, id_ in rows}


async def variants_by_product_ids(engine: Connectable, product_ids: Sequence[int]) -> dict[int, list[Variant]]:
    stmt = (
        select(*_VARIANT_COLUMNS)
        .where(m.ProductVariant.product_id.in_(product_ids), m.ProductVariant.published.is_(True))
        .order_by(m.ProductVariant.product_id, m.ProductVariant.id)
    )
    grouped: dict[int, list[Variant]] = {pid: [] for pid in product_ids}
    async with engine.connect() as conn:
        for row in await conn.execute(stmt):
            grouped[row[1]].append(Variant(*row))
    return grouped


# Built once (every cart change runs it; building it cost more CPU than running it).
_VARIANT_SCOPES = (
    select(m.ProductVariant.id, m.ProductVariant.product_id, m.Product.category_id)
    .join(m.Product, m.Product.id == m.ProductVariant.product_id)
    .where(
        m.ProductVariant.id.in_(bindparam("variant_ids", expanding=True)),
        m.ProductVariant.published.is_(True),
        m.Product.published.is_(True),
    )
)


async def variant_scopes(engine: Connectable, ids: Sequence[int]) -> dict[int, tuple[int, int | None]]:
    """Product and category of each published variant: what pricing scopes promotions by (one query)."""
    async with engine.connect() as conn:
        return {row[0]: (row[1], row[2]) for row in await conn.execute(_VARIANT_SCOPES, {"variant_ids": list(ids)})}


async def page_products(
    engine: Connectable, query: ProductQuery, *, first: int, after_id: int | None = None
) -> tuple[list[Product], bool]:
    """One page in id order (keyset pagination) and whether another page follows."""
    page, has_next = await listing.page_products(
        engine, query, first=first, after=(None, after_id) if after_id is not None else None
    )
    return [product for product, _ in page], has_next


def search_text(name: str, skus: Iterable[str]) -> str:
    """What `search` looks in: the lower-cased name and SKUs, kept in step by whoever writes products."""
    return " ".join([name, *skus]).lower()
