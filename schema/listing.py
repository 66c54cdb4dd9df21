"""Product listings in the API: `products` with filters, sort orders, keyset cursors and facets.

The same connection serves `products` and a collection's `products`. A cursor carries the sort
it was made for and the last row's key (sort value, id): it stays valid as the catalog changes,
and is refused (BAD_USER_INPUT) with another sort order, where it would mean nothing.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import orjson
import strawberry
from strawberry.types import Info

from commerce.catalog import listing
from commerce.catalog.listing import ProductQuery, ProductSort, SortKey
from schema.bare import bare
from schema.catalog import Category, Location, Product, SelectedOptionInput
from schema.errors import bad_input
from schema.money import Money
from schema.node import decode_int_id
from schema.pagination import PageInfo, check_first

__all__ = [
    "ListingQuery",
    "ProductCollectionSortKeys",
    "ProductConnection",
    "ProductFilter",
    "ProductSortKeys",
    "product_connection",
]

MAX_PRICE_BUCKETS = 20


@strawberry.enum(description="How a product list is ordered; `reverse: true` flips it.")
class ProductSortKeys(Enum):
    ID = "ID"
    TITLE = "TITLE"
    PRICE = "PRICE"  # the cheapest variant's price: low to high (reverse: high to low)
    CREATED_AT = "CREATED_AT"  # oldest first (reverse: newest first)
    RELEVANCE = "RELEVANCE"  # best match for `search` first; ID order without a search


@strawberry.enum(description="How a collection's products are ordered; MANUAL is the merchandiser's order.")
class ProductCollectionSortKeys(Enum):
    MANUAL = "MANUAL"  # a rule-based collection has no manual order: ID order there
    ID = "ID"
    TITLE = "TITLE"
    PRICE = "PRICE"
    CREATED_AT = "CREATED_AT"


@strawberry.input
class ProductFilter:
    category_slug: str | None = None
    available_at_location_id: strawberry.ID | None = None
    tag: str | None = None
    price_min: Decimal | None = strawberry.field(default=None, description="In the channel's currency.")
    price_max: Decimal | None = None
    options: list[SelectedOptionInput] | None = strawberry.field(
        default=None, description="Values of one option are alternatives; different options must all match."
    )
    available_for_sale: bool | None = strawberry.field(
        default=None, description="Priced and in stock (at `availableAtLocationId` when given)."
    )


# ---------------------------------------------------------------- cursors
def listing_cursor(sort: ProductSort, key: SortKey) -> str:
    payload = orjson.dumps([sort.key, sort.reverse, key[0], key[1]])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(sort: ProductSort, cursor: str | None) -> SortKey | None:
    if cursor is None:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raw = None
    if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[3], int) and not isinstance(raw[3], bool)):
        raise bad_input("`after` is not a cursor from this list.", ["after"])
    if raw[0] != sort.key or raw[1] != sort.reverse:
        raise bad_input("`after` is a cursor from another sort order: start again from the first page.", ["after"])
    value = raw[2]
    if sort.key == "PRICE" and value is not None:
        try:
            value = Decimal(str(value))
        except ArithmeticError:
            raise bad_input("`after` is not a cursor from this list.", ["after"]) from None
    if value is not None and not isinstance(value, str | int | Decimal):
        raise bad_input("`after` is not a cursor from this list.", ["after"])
    return value, raw[3]


# ---------------------------------------------------------------- facets
@strawberry.type
class CategoryFacet:
    category: Category
    count: int


@strawberry.type
class FacetValue:
    value: str
    count: int


@strawberry.type(description="An option's values among the listed products, each with how many products offer it.")
class OptionFacet:
    name: str
    values: list[FacetValue]


@strawberry.type(description="Listed products priced from `min` up to (not including) `max`; no `max`: and above.")
class PriceRangeFacet:
    min: Money
    max: Money | None
    count: int


@strawberry.type(description="Listed products in stock at a store.")
class LocationFacet:
    location: Location
    count: int


@strawberry.type(description="Counts over every product the filter matches (not only this page).")
class ProductFacets:
    query: strawberry.Private[ProductQuery]

    @strawberry.field
    async def categories(self, info: Info) -> list[CategoryFacet]:
        found = await listing.category_facets(info.context.services.engine, self.query)
        return [CategoryFacet(category=Category.of(f.category), count=f.count) for f in found]

    @strawberry.field
    async def options(self, info: Info) -> list[OptionFacet]:
        grouped: dict[str, list[FacetValue]] = {}
        for f in await listing.option_facets(info.context.services.engine, self.query):
            grouped.setdefault(f.name, []).append(FacetValue(value=f.value, count=f.count))
        return [OptionFacet(name=name, values=values) for name, values in grouped.items()]

    @strawberry.field(description="Price ranges split at `bounds` (default 50, 100, 200, 500).")
    async def price_ranges(self, info: Info, bounds: list[Decimal] | None = None) -> list[PriceRangeFacet]:
        if bounds is not None and not 0 < len(bounds) <= MAX_PRICE_BUCKETS:
            raise bad_input(f"Give 1 to {MAX_PRICE_BUCKETS} bounds.", ["bounds"])
        if bounds is not None and any(b <= 0 for b in bounds):
            raise bad_input("Bounds are positive amounts.", ["bounds"])
        found = await listing.price_bucket_facets(
            info.context.services.engine, self.query, bounds or listing.DEFAULT_PRICE_BUCKETS
        )
        currency = info.context.channel.currency
        return [
            PriceRangeFacet(
                min=Money(amount=f.min, currency=currency),
                max=Money(amount=f.max, currency=currency) if f.max is not None else None,
                count=f.count,
            )
            for f in found
        ]

    @strawberry.field(description="Stores with at least one listed product in stock, and how many.")
    async def in_stock_at_stores(self, info: Info) -> list[LocationFacet]:
        found = await listing.in_stock_facets(info.context.services.engine, self.query)
        return [LocationFacet(location=Location.of(f.location), count=f.count) for f in found]


# ---------------------------------------------------------------- the connection
@strawberry.type
class ProductEdge:
    __slots__ = ("cursor", "node")
    node: Product
    cursor: str

    @classmethod
    def of(cls, node: Product, cursor: str) -> ProductEdge:
        edge = bare(cls)
        edge.node = node
        edge.cursor = cursor
        return edge


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    query: strawberry.Private[ProductQuery]

    @strawberry.field(
        description="How many products match: exact up to 10,000, an estimate beyond; kept until the catalog changes."
    )
    async def total_count(self, info: Info) -> int:
        counts = info.context.services.product_counts
        count = counts.get(self.query)
        if count is None:
            count = counts.put(self.query, await listing.count_products(info.context.reads, self.query))
        return count

    @strawberry.field(description="Counts per category, option value, price range and store, for filter menus.")
    def facets(self) -> ProductFacets:
        return ProductFacets(query=self.query)


MAX_SEARCH_CHARS = 200  # a name or a SKU; a longer pattern only costs the database
# A filter menu selects a few values of a few options. Each option name is one more EXISTS in
# every statement of the listing (300 took 2.4 s, 1,000 a masked error), and the filter is the
# key of the totalCount cache: both are bounded by what a menu can ask. The values of one option
# are one IN list in its EXISTS: a shoe shop's size menu (35 to 48 in half sizes) is 27 of them.
MAX_SELECTED_OPTIONS = 20  # option names
MAX_SELECTED_VALUES = 100  # values over all options
MAX_FILTER_TEXT = 100  # the columns' width (slug, tag, option name and value): longer matches nothing
MAX_OPTIONS_TEXT = MAX_SELECTED_OPTIONS * 2 * MAX_FILTER_TEXT  # a cache key no longer than 20 long pairs


def product_query(info: Info, filter: ProductFilter | None, search: str | None, **scope: Any) -> ProductQuery:
    """The domain query for a filter input, in the request channel's currency."""
    if search is not None and len(search) > MAX_SEARCH_CHARS:
        raise bad_input(f"Search for at most {MAX_SEARCH_CHARS} characters.", ["search"])
    f = filter or ProductFilter()
    if f.options is not None and len({o.name for o in f.options}) > MAX_SELECTED_OPTIONS:
        raise bad_input(f"Select values of at most {MAX_SELECTED_OPTIONS} options.", ["filter", "options"])
    if f.options is not None and len(f.options) > MAX_SELECTED_VALUES:
        raise bad_input(f"Select at most {MAX_SELECTED_VALUES} option values.", ["filter", "options"])
    texts = [("categorySlug", f.category_slug), ("tag", f.tag)]
    texts += [("options", text) for o in f.options or () for text in (o.name, o.value)]
    for name, text in texts:
        if text is not None and len(text) > MAX_FILTER_TEXT:
            raise bad_input(f"`{name}` is at most {MAX_FILTER_TEXT} characters.", ["filter", name])
    if sum(len(o.name) + len(o.value) for o in f.options or ()) > MAX_OPTIONS_TEXT:
        raise bad_input(f"The options selected are at most {MAX_OPTIONS_TEXT} characters.", ["filter", "options"])
    location_key = None
    if f.available_at_location_id is not None:
        location_key = decode_int_id(f.available_at_location_id, "Location", "filter.availableAtLocationId")
    return ProductQuery(
        category_slug=f.category_slug,
        available_at_location_id=location_key,
        search=search,
        currency=info.context.channel.currency,
        tag=f.tag,
        price_min=f.price_min,
        price_max=f.price_max,
        options=tuple((o.name, o.value) for o in f.options or ()),
        available_for_sale=f.available_for_sale,
        **scope,
    )


async def product_connection(
    info: Info, query: ProductQuery, sort: ProductSort, first: int | None, after: str | None
) -> ProductConnection:
    limit = check_first(first, info.context.settings.max_page_size)
    after_key = _decode_cursor(sort, after)
    page, has_next = await listing.page_products(info.context.reads, query, first=limit, after=after_key, sort=sort)
    edge, product = ProductEdge.of, Product.of  # bound once for the page, not per product
    edges = [edge(product(p), listing_cursor(sort, key)) for p, key in page]
    page_info = PageInfo(
        has_next_page=has_next,
        has_previous_page=after_key is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return ProductConnection(edges=edges, page_info=page_info, query=query)


@strawberry.type
class ListingQuery:
    @strawberry.field
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        search: Annotated[str | None, strawberry.argument(description="Matches name or SKU.")] = None,
        sort_key: ProductSortKeys = ProductSortKeys.ID,
        reverse: bool = False,
    ) -> ProductConnection:
        query = product_query(info, filter, search)
        return await product_connection(info, query, ProductSort(sort_key.value, reverse), first, after)
