"""Catalog, stock and prices as the storefront reads them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from commerce.catalog import entities, service
from commerce.catalog.service import ProductQuery
from core.ids import int_key, to_global_id
from schema.batch import batched, one
from schema.errors import bad_input
from schema.money import Money
from schema.node import Node, decode_int_id, register_node
from schema.pagination import PageInfo, check_first, decode_cursor, encode_cursor

__all__ = ["CatalogQuery", "Category", "Channel", "Location", "Product", "ProductVariant"]


@strawberry.enum
class ChannelKind(Enum):
    WEB = "WEB"
    MOBILE = "MOBILE"
    STORE = "STORE"
    CALL_CENTER = "CALL_CENTER"
    MARKETPLACE = "MARKETPLACE"


@strawberry.enum
class LocationKind(Enum):
    WAREHOUSE = "WAREHOUSE"
    STORE = "STORE"


@strawberry.type
class Channel(Node):
    id: strawberry.ID
    code: str
    name: str
    kind: ChannelKind
    currency: str

    @classmethod
    def of(cls, c: entities.Channel) -> Channel:
        return cls(
            id=strawberry.ID(to_global_id("Channel", c.id)),
            code=c.code,
            name=c.name,
            kind=ChannelKind(c.kind),
            currency=c.currency,
        )


@strawberry.type
class Location(Node):
    id: strawberry.ID
    code: str
    name: str
    kind: LocationKind
    city: str
    click_and_collect: bool = strawberry.field(description="Accepts click & collect and reserve & collect orders.")

    @classmethod
    def of(cls, loc: entities.Location) -> Location:
        return cls(
            id=strawberry.ID(to_global_id("Location", loc.id)),
            code=loc.code,
            name=loc.name,
            kind=LocationKind(loc.kind),
            city=loc.city,
            click_and_collect=loc.click_and_collect,
        )


@strawberry.type
class Category(Node):
    id: strawberry.ID
    slug: str
    name: str

    @classmethod
    def of(cls, c: entities.Category) -> Category:
        return cls(id=strawberry.ID(to_global_id("Category", c.id)), slug=c.slug, name=c.name)


@strawberry.type(description="On hand minus reserved, at one location.")
class StockLevel:
    location_id: strawberry.Private[int]
    available: int

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return await one(_locations, self, info.context)


@strawberry.type
class ProductVariant(Node):
    id: strawberry.ID
    key: strawberry.Private[int]
    sku: str
    name: str

    @classmethod
    def of(cls, v: entities.Variant) -> ProductVariant:
        return cls(id=strawberry.ID(to_global_id("ProductVariant", v.id)), key=v.id, sku=v.sku, name=v.name)

    @strawberry.field(description="The one price for the request's channel currency.")
    async def price(self, info: Info) -> Money:
        return await one(_prices, self, info.context)

    @strawberry.field(description="At one location, or summed over all locations.")
    async def quantity_available(self, info: Info, location_id: strawberry.ID | None = None) -> int:
        return await one(_quantities_available, self, info.context, {"locationId": location_id})

    @strawberry.field
    async def stock(self, info: Info) -> list[StockLevel]:
        return await one(_stock_levels, self, info.context)


@strawberry.type
class Product(Node):
    id: strawberry.ID
    key: strawberry.Private[int]
    category_key: strawberry.Private[int | None]
    slug: str
    name: str
    description: str

    @classmethod
    def of(cls, p: entities.Product) -> Product:
        return cls(
            id=strawberry.ID(to_global_id("Product", p.id)),
            key=p.id,
            category_key=p.category_id,
            slug=p.slug,
            name=p.name,
            description=p.description,
        )

    @strawberry.field
    async def category(self, info: Info) -> Category | None:
        return await one(_categories, self, info.context)

    @strawberry.field
    async def variants(self, info: Info) -> list[ProductVariant]:
        return await one(_variants, self, info.context)


# ---------------------------------------------------------------- batch resolvers
# Each resolves its field for a whole level of objects with one loader call (schema/batch.py).


@batched("StockLevel", "location")
async def _locations(levels: Sequence[StockLevel], context: Any, args: dict[str, Any]) -> list[Any]:
    found = await context.loaders.locations.load_many([level.location_id for level in levels])
    return [Location.of(location) for location in found]


@batched("ProductVariant", "price")
async def _prices(variants: Sequence[ProductVariant], context: Any, args: dict[str, Any]) -> list[Any]:
    currency = context.channel.currency
    amounts: list[Decimal | None] = await context.loaders.prices.load_many([v.key for v in variants])
    return [
        Money(amount=amount, currency=currency)
        if amount is not None
        else LookupError(f"variant {variant.key} has no price in {currency}")
        for variant, amount in zip(variants, amounts, strict=True)
    ]


@batched("ProductVariant", "quantityAvailable")
async def _quantities_available(variants: Sequence[ProductVariant], context: Any, args: dict[str, Any]) -> list[Any]:
    stock = await context.loaders.stock.load_many([v.key for v in variants])
    location_id = args.get("locationId")
    if location_id is None:
        return [sum(level.available for level in levels) for levels in stock]
    location_key = decode_int_id(location_id, "Location", "locationId")
    return [sum(level.available for level in levels if level.location_id == location_key) for levels in stock]


@batched("ProductVariant", "stock")
async def _stock_levels(variants: Sequence[ProductVariant], context: Any, args: dict[str, Any]) -> list[Any]:
    stock = await context.loaders.stock.load_many([v.key for v in variants])
    return [
        [StockLevel(location_id=level.location_id, available=level.available) for level in levels] for levels in stock
    ]


@batched("Product", "category")
async def _categories(products: Sequence[Product], context: Any, args: dict[str, Any]) -> list[Any]:
    keys = [p.category_key for p in products if p.category_key is not None]
    found = dict(zip(keys, await context.loaders.categories.load_many(keys), strict=True)) if keys else {}
    return [
        Category.of(category) if (category := found.get(p.category_key)) is not None else None  # type: ignore[arg-type]
        for p in products
    ]


@batched("Product", "variants")
async def _variants(products: Sequence[Product], context: Any, args: dict[str, Any]) -> list[Any]:
    found = await context.loaders.variants_by_product.load_many([p.key for p in products])
    return [[ProductVariant.of(v) for v in variants] for variants in found]


@strawberry.type
class ProductEdge:
    node: Product
    cursor: str


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    query: strawberry.Private[ProductQuery]

    @strawberry.field(
        description="How many products match the filter: counted once, then kept until the catalog changes."
    )
    async def total_count(self, info: Info) -> int:
        counts = info.context.services.product_counts
        count = counts.get(self.query)
        if count is None:
            count = counts.put(self.query, await service.count_products(info.context.reads, self.query))
        return count


@strawberry.input
class ProductFilter:
    category_slug: str | None = None
    available_at_location_id: strawberry.ID | None = None


@strawberry.type
class CatalogQuery:
    @strawberry.field
    async def channels(self, info: Info) -> list[Channel]:
        return [Channel.of(c) for c in await service.list_channels(info.context.services.engine)]

    @strawberry.field
    async def locations(self, info: Info, kind: LocationKind | None = None) -> list[Location]:
        found = await service.list_locations(info.context.reads, kind.value if kind else None)
        return [Location.of(loc) for loc in found]

    @strawberry.field
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        search: Annotated[str | None, strawberry.argument(description="Matches name or SKU.")] = None,
    ) -> ProductConnection:
        limit = check_first(first, info.context.settings.max_page_size)
        after_id = decode_cursor("Product", after)
        location_key = None
        if filter and filter.available_at_location_id is not None:
            location_key = decode_int_id(filter.available_at_location_id, "Location", "filter.availableAtLocationId")
        query = ProductQuery(
            category_slug=filter.category_slug if filter else None,
            available_at_location_id=location_key,
            search=search,
        )
        products, has_next = await service.page_products(info.context.reads, query, first=limit, after_id=after_id)
        edges = [ProductEdge(node=Product.of(p), cursor=encode_cursor("Product", p.id)) for p in products]
        page_info = PageInfo(
            has_next_page=has_next,
            has_previous_page=after_id is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return ProductConnection(edges=edges, page_info=page_info, query=query)

    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID | None = None, slug: str | None = None) -> Product | None:
        if (id is None) == (slug is None):
            raise bad_input("Give exactly one of `id` or `slug`.", ["id"])
        if id is not None:
            found = await info.context.loaders.products.load(decode_int_id(id, "Product"))
        else:
            found = await service.product_by_slug(info.context.reads, slug or "")
        return Product.of(found) if found else None


def _node_by_key(type_name: str, loader: str, present: Callable[[Any], Any]) -> None:
    """Register `node(id)` for a catalog type: load by integer key, show with `present`."""

    @register_node(type_name)
    async def fetch(info: Info, key: str) -> Any:
        number = int_key(key)
        found = await getattr(info.context.loaders, loader).load(number) if number is not None else None
        return present(found) if found else None


_node_by_key("Product", "products", Product.of)
_node_by_key("ProductVariant", "variants", ProductVariant.of)
_node_by_key("Category", "categories", Category.of)
_node_by_key("Location", "locations", Location.of)


@register_node("Channel")
async def _channel_node(info: Info, key: str) -> Channel | None:
    channels = await service.list_channels(info.context.services.engine)
    return next((Channel.of(c) for c in channels if str(c.id) == key), None)
