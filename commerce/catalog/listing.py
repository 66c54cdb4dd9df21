"""Product listings: filters, sort orders with keyset pages, and facet counts.

A listing is a read model over the catalog, the price book and stock: filtering or sorting by
price and by availability needs them in the same statement (so it reads their tables, as the
availability filter always did), and each answer costs one statement whatever the page size.

Every sort is a keyset order on (sort value, product id), the id breaking ties in the sort's own
direction, so a cursor (the last row's sort value and id) stays valid while products are added,
repriced or removed: the next page starts after that key, never at an offset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVarTuple

from sqlalchemy import Boolean, Numeric, and_, case, column, exists, func, literal, literal_column, or_, select, table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from commerce.catalog import models as m
from commerce.catalog.entities import Category, Location, Product
from commerce.inventory.models import StockLevel
from commerce.pricing.models import Price
from core.db import Connectable

__all__ = [
    "DEFAULT_PRICE_BUCKETS",
    "SORT_KEYS",
    "CategoryCount",
    "LocationCount",
    "OptionValueCount",
    "PriceBucketCount",
    "ProductQuery",
    "ProductSort",
    "SortKey",
    "category_facets",
    "count_products",
    "in_stock_facets",
    "option_facets",
    "page_products",
    "price_bucket_facets",
]

SORT_KEYS = ("ID", "TITLE", "PRICE", "CREATED_AT", "RELEVANCE", "MANUAL")
DEFAULT_PRICE_BUCKETS = (Decimal(50), Decimal(100), Decimal(200), Decimal(500))
_NO_PRICE_LAST = Decimal("9999999999.99")  # an unpriced product sorts after every priced one, either way
_NO_PRICE_FIRST = Decimal(-1)

_Row = TypeVarTuple("_Row")
_PRODUCT_COLUMNS = (m.Product.id, m.Product.slug, m.Product.name, m.Product.description, m.Product.category_id)


@dataclass(frozen=True, slots=True)
class ProductQuery:
    """A filter over published products; every given condition must hold.

    `search` matches name or SKU, case-insensitively. Prices are the channel currency's (a product's
    price is its cheapest published variant's). `options` are (name, value) pairs: values of one
    option are alternatives (Size M or L), different options must all match (and Colour Black).
    `collection_id` keeps a manual collection's products; `rule` adds a rule collection's conditions.
    """

    category_slug: str | None = None
    available_at_location_id: int | None = None
    search: str | None = None
    currency: str = "PLN"
    tag: str | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    options: tuple[tuple[str, str], ...] = ()
    available_for_sale: bool | None = None
    collection_id: int | None = None
    rule: ProductQuery | None = field(default=None)


SortKey = tuple[Any, int]  # (sort value, product id): where a page ends


@dataclass(frozen=True, slots=True)
class ProductSort:
    """`key` one of SORT_KEYS; `reverse` flips it. RELEVANCE (best match first) needs a search;
    MANUAL (the merchandiser's order) a manual collection. CREATED_AT is the order products were
    added in (ids are assigned in that order): `reverse` for newest first."""

    key: str = "ID"
    reverse: bool = False

    @property
    def descending(self) -> bool:
        return self.reverse != (self.key == "RELEVANCE")


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category: Category
    count: int


@dataclass(frozen=True, slots=True)
class OptionValueCount:
    name: str
    value: str
    count: int


@dataclass(frozen=True, slots=True)
class PriceBucketCount:
    min: Decimal
    max: Decimal | None  # None: no upper bound
    count: int


@dataclass(frozen=True, slots=True)
class LocationCount:
    location: Location
    count: int


# ---------------------------------------------------------------- expressions
def _published_variant_of_product() -> ColumnElement[bool]:
    return and_(m.ProductVariant.product_id == m.Product.id, m.ProductVariant.published.is_(True))


def _min_price(currency: str) -> Any:
    """The product's cheapest published variant's price in `currency` (NULL: none priced)."""
    return (
        select(func.min(Price.amount))
        .join(m.ProductVariant, m.ProductVariant.id == Price.variant_id)
        .where(_published_variant_of_product(), Price.currency == currency)
        .correlate(m.Product)
        .scalar_subquery()
    )


def _in_stock(location_id: int | None, currency: str | None = None) -> ColumnElement[bool]:
    """A published variant of the product has stock (at `location_id`, or anywhere), and a price."""
    conditions = [_published_variant_of_product(), StockLevel.on_hand - StockLevel.reserved > 0]
    if location_id is not None:
        conditions.append(StockLevel.location_id == location_id)
    stmt = select(StockLevel.variant_id).join(m.ProductVariant, m.ProductVariant.id == StockLevel.variant_id)
    if currency is not None:
        stmt = stmt.join(Price, and_(Price.variant_id == StockLevel.variant_id, Price.currency == currency))
    return exists(stmt.where(*conditions).correlate(m.Product))


def _has_option(name: str, values: Sequence[str]) -> ColumnElement[bool]:
    return exists(
        select(m.VariantOptionValue.variant_id)
        .join(m.ProductVariant, m.ProductVariant.id == m.VariantOptionValue.variant_id)
        .join(m.ProductOption, m.ProductOption.id == m.VariantOptionValue.option_id)
        .where(_published_variant_of_product(), m.ProductOption.name == name, m.VariantOptionValue.value.in_(values))
        .correlate(m.Product)
    )


def _search_term(search: str | None) -> str:
    return (search or "").strip().lower()


TRIGRAM = 3  # the shortest term a trigram index serves (pg_trgm, SQLite's FTS5 trigram tokenizer)
_products_fts = table("products_fts", column("rowid"))  # SQLite only: migration 0072


class _Contains(ColumnElement[bool]):
    """`search_text` contains the term: a LIKE on PostgreSQL, which pg_trgm's GIN index serves
    (migration 0051); on SQLite a trigram phrase in FTS5 (migration 0072), which matches the same
    substrings (three characters or more, case folded) from its index instead of reading every row.
    Both forms are built; the dialect compiles one (so a statement is built once for either)."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate as it is (no `= 1` on SQLite)
    _traverse_internals = [  # noqa: RUF012  # SQLAlchemy's declaration: what the cache key is made of
        ("as_like", InternalTraversal.dp_clauseelement),
        ("as_fts", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, term: str) -> None:
        self.as_like: ColumnElement[bool] = m.Product.search_text.contains(term, autoescape=True)
        phrase = '"' + term.replace('"', '""') + '"'  # a quoted FTS5 string: every character literal
        self.as_fts: ColumnElement[bool] = m.Product.id.in_(
            select(_products_fts.c.rowid).where(literal_column("products_fts").op("MATCH")(phrase))
        )


@compiles(_Contains)
def _compile_contains(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.as_like, **kw)


@compiles(_Contains, "sqlite")
def _compile_contains_sqlite(element: _Contains, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.as_fts, **kw)


def _matches(search: str | None) -> ColumnElement[bool]:
    """Products whose name or a SKU contains the term, case-insensitively (README: Search)."""
    term = _search_term(search)
    if len(term) < TRIGRAM:  # no trigram to look up: both backends read the products
        return m.Product.search_text.contains(term, autoescape=True)
    return _Contains(term)


def _conditions(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.category_slug is not None:
        category = select(m.Category.id).where(m.Category.slug == query.category_slug).scalar_subquery()
        conditions.append(m.Product.category_id == category)
    if query.available_at_location_id is not None:
        conditions.append(_in_stock(query.available_at_location_id))
    if query.search:
        conditions.append(_matches(query.search))
    if query.tag is not None:
        conditions.append(
            exists(
                select(m.ProductTag.tag).where(m.ProductTag.product_id == m.Product.id, m.ProductTag.tag == query.tag)
            )
        )
    if query.price_min is not None:
        conditions.append(_min_price(query.currency) >= query.price_min)
    if query.price_max is not None:
        conditions.append(_min_price(query.currency) <= query.price_max)
    by_name: dict[str, list[str]] = {}
    for name, value in query.options:
        by_name.setdefault(name, []).append(value)
    conditions += [_has_option(name, values) for name, values in by_name.items()]
    if query.available_for_sale is not None:
        sellable = _in_stock(query.available_at_location_id, query.currency)
        conditions.append(sellable if query.available_for_sale else ~sellable)
    if query.collection_id is not None:
        conditions.append(
            exists(
                select(m.CollectionProduct.product_id).where(
                    m.CollectionProduct.collection_id == query.collection_id,
                    m.CollectionProduct.product_id == m.Product.id,
                )
            )
        )
    if query.rule is not None:
        conditions += _conditions(query.rule)
    return conditions


def _filtered(stmt: Select[*_Row], query: ProductQuery) -> Select[*_Row]:
    return stmt.where(m.Product.published.is_(True), *_conditions(query))


def _sort_value(sort: ProductSort, query: ProductQuery) -> Any:
    """The expression a sort orders by (before the id), or None for ID order."""
    if sort.key == "TITLE":
        return func.lower(m.Product.name)
    if sort.key == "PRICE":
        missing = _NO_PRICE_FIRST if sort.descending else _NO_PRICE_LAST
        return func.coalesce(_min_price(query.currency), literal(missing, Numeric(12, 2)))
    if sort.key == "RELEVANCE" and query.search:
        term = _search_term(query.search)
        return case(
            (m.Product.search_text.startswith(term, autoescape=True), 3),  # the name starts with it
            (func.lower(m.Product.name).contains(term, autoescape=True), 2),  # the name has it
            else_=1,  # a SKU has it
        )
    if sort.key == "MANUAL" and query.collection_id is not None:
        return (
            select(m.CollectionProduct.position)
            .where(
                m.CollectionProduct.collection_id == query.collection_id,
                m.CollectionProduct.product_id == m.Product.id,
            )
            .correlate(m.Product)
            .scalar_subquery()
        )
    return None  # ID, CREATED_AT (ids grow as products are added), or RELEVANCE without a search


def _after(value: Any, after: SortKey, descending: bool) -> ColumnElement[bool]:
    last_value, last_id = after
    beyond_id = m.Product.id < last_id if descending else m.Product.id > last_id
    if value is None:
        return beyond_id
    beyond = value < last_value if descending else value > last_value
    return or_(beyond, and_(value == last_value, beyond_id))


async def page_products(
    engine: Connectable,
    query: ProductQuery,
    *,
    first: int,
    after: SortKey | None = None,
    sort: ProductSort = ProductSort(),
) -> tuple[list[tuple[Product, SortKey]], bool]:
    """One page in `sort` order, each product with its key (for its cursor), and whether more follow."""
    value = _sort_value(sort, query)
    columns = [*_PRODUCT_COLUMNS, (value if value is not None else literal(None)).label("sort_value")]
    stmt = _filtered(select(*columns), query)
    if after is not None:
        stmt = stmt.where(_after(value, after, sort.descending))
    order = [value] if value is not None else []
    order.append(m.Product.id)
    # LIMIT stays a bound parameter: PostgreSQL's generic plan for a reused prepared statement
    # guesses it, which keeps the plans made for each search term (a generic plan of a search
    # with a literal LIMIT walks the primary key, reading every product for a rare term).
    stmt = stmt.order_by(*(o.desc() if sort.descending else o.asc() for o in order)).limit(first + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    page = [(Product(*row[:5]), (_plain(row[5]), row[0])) for row in rows[:first]]
    return page, len(rows) > first


def _plain(value: Any) -> Any:
    """A sort value as JSON can carry it in a cursor (Decimal as its string)."""
    return str(value) if isinstance(value, Decimal) else value


ESTIMATE_ABOVE = 10_000  # totalCount beyond this many matches is PostgreSQL's estimate


async def count_products(engine: Connectable, query: ProductQuery) -> int:
    """How many products match: exact up to `ESTIMATE_ABOVE`, PostgreSQL's estimate beyond.

    Counting 100,000 matches of a broad search among a million products visits every one of
    them (a fifth of a second); the planner's estimate costs one EXPLAIN (a millisecond) and is
    within some percent after ANALYZE (migration 0072 samples 1,000 search texts). Below the
    threshold, where a shopper could page to the end, the count is exact; it stops at the
    threshold, so an estimate that was too low costs a bounded count, and the answer is then
    `ESTIMATE_ABOVE + 1` (at least that many). SQLite (small catalogs) always counts.
    """
    async with engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            stmt = _filtered(select(func.count()).select_from(m.Product), query)
            return int((await conn.execute(stmt)).scalar_one())
        try:
            async with conn.begin_nested():  # a failed EXPLAIN must not abort the request's reads
                estimate = await _estimated_rows(conn, _filtered(select(m.Product.id), query))
        except DBAPIError:  # a parameter EXPLAIN cannot type, say: count instead
            estimate = 0
        if estimate >= ESTIMATE_ABOVE:
            return estimate
        capped = _filtered(select(literal(1)).select_from(m.Product), query).limit(ESTIMATE_ABOVE + 1).subquery()
        return int((await conn.execute(select(func.count()).select_from(capped))).scalar_one())


async def _estimated_rows(conn: AsyncConnection, stmt: Any) -> int:
    """The planner's row estimate for `stmt` (EXPLAIN, parameters bound as the driver binds them)."""
    compiled = stmt.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    positional = tuple(params[name] for name in compiled.positiontup or ())
    found = (await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + compiled.string, positional)).scalar_one()
    plan = json.loads(found) if isinstance(found, str) else found
    return int(plan[0]["Plan"]["Plan Rows"])


# ---------------------------------------------------------------- facets
def _matching_ids(query: ProductQuery) -> Any:
    return _filtered(select(m.Product.id), query).scalar_subquery()


async def category_facets(engine: AsyncEngine, query: ProductQuery) -> list[CategoryCount]:
    """Matching products per category, most first."""
    count = func.count(m.Product.id)
    stmt = _filtered(
        select(m.Category.id, m.Category.slug, m.Category.name, count).join(
            m.Category, m.Category.id == m.Product.category_id
        ),
        query,
    ).group_by(m.Category.id, m.Category.slug, m.Category.name)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt.order_by(count.desc(), m.Category.name))).all()
    return [CategoryCount(Category(row[0], row[1], row[2]), row[3]) for row in rows]


async def option_facets(engine: AsyncEngine, query: ProductQuery) -> list[OptionValueCount]:
    """Matching products per option value (a product counts once per value its variants offer)."""
    stmt = (
        select(
            m.ProductOption.name,
            m.VariantOptionValue.value,
            func.count(func.distinct(m.ProductVariant.product_id)),
        )
        .join(m.ProductOption, m.ProductOption.id == m.VariantOptionValue.option_id)
        .join(m.ProductVariant, m.ProductVariant.id == m.VariantOptionValue.variant_id)
        .where(m.ProductVariant.published.is_(True), m.ProductVariant.product_id.in_(_matching_ids(query)))
        .group_by(m.ProductOption.name, m.VariantOptionValue.value)
        .order_by(m.ProductOption.name, m.VariantOptionValue.value)
    )
    async with engine.connect() as conn:
        return [OptionValueCount(*row) for row in await conn.execute(stmt)]


async def price_bucket_facets(
    engine: AsyncEngine, query: ProductQuery, bounds: Sequence[Decimal] = DEFAULT_PRICE_BUCKETS
) -> list[PriceBucketCount]:
    """Matching priced products per price range [bound, next bound), every range listed (count 0 too)."""
    edges = sorted(set(bounds))
    price = _min_price(query.currency)
    bucket = case(*((price < edge, n) for n, edge in enumerate(edges)), else_=len(edges)).label("bucket")
    inner = _filtered(select(bucket).select_from(m.Product), query).where(price.is_not(None)).subquery()
    stmt = select(inner.c.bucket, func.count()).group_by(inner.c.bucket)
    async with engine.connect() as conn:
        counts = {row[0]: row[1] for row in await conn.execute(stmt)}
    lows = [Decimal(0), *edges]
    highs: list[Decimal | None] = [*edges, None]
    return [PriceBucketCount(lows[n], highs[n], counts.get(n, 0)) for n in range(len(lows))]


async def in_stock_facets(engine: AsyncEngine, query: ProductQuery) -> list[LocationCount]:
    """Matching products in stock per store (a product counts when any published variant is there)."""
    count = func.count(func.distinct(m.ProductVariant.product_id))
    location_columns = (
        m.Location.id,
        m.Location.code,
        m.Location.name,
        m.Location.kind,
        m.Location.city,
        m.Location.click_and_collect,
    )
    stmt = (
        select(*location_columns, count)
        .select_from(StockLevel)
        .join(m.ProductVariant, m.ProductVariant.id == StockLevel.variant_id)
        .join(m.Location, m.Location.id == StockLevel.location_id)
        .where(
            m.Location.kind == "STORE",
            StockLevel.on_hand - StockLevel.reserved > 0,
            m.ProductVariant.published.is_(True),
            m.ProductVariant.product_id.in_(_matching_ids(query)),
        )
        .group_by(*location_columns)
        .order_by(m.Location.id)
    )
    async with engine.connect() as conn:
        return [LocationCount(Location(*row[:6]), row[6]) for row in await conn.execute(stmt)]
