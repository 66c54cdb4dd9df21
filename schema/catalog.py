"""Catalog, stock and prices as the storefront reads them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from commerce.catalog import entities, service
from commerce.catalog.service import ProductQuery
from core.ids import int_key, to_global_id
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
        return Location.of(await info.context.loaders.locations.load(self.location_id))


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
        amount: Decimal | None = await info.context.loaders.prices.load(self.key)
        if amount is None:
            raise LookupError(f"variant {self.key} has no price in {info.context.channel.currency}")
        return Money(amount=amount, currency=info.context.channel.currency)

    @strawberry.field(description="At one location, or summed over all locations.")
    async def quantity_available(self, info: Info, location_id: strawberry.ID | None = None) -> int:
        stock = await info.context.loaders.stock.load(self.key)
        if location_id is None:
            return sum(level.available for level in stock)
        location_key = decode_int_id(location_id, "Location", "locationId")
        return sum(level.available for level in stock if level.location_id == location_key)

    @strawberry.field
    async def stock(self, info: Info) -> list[StockLevel]:
        stock = await info.context.loaders.stock.load(self.key)
        return [StockLevel(location_id=level.location_id, available=level.available) for level in stock]


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
        if self.category_key is None:
            return None
        category = await info.context.loaders.categories.load(self.category_key)
        return Category.of(category) if category else None

    @strawberry.field
    async def variants(self, info: Info) -> list[ProductVariant]:
        return [ProductVariant.of(v) for v in await info.context.loaders.variants_by_product.load(self.key)]


@strawberry.type
class ProductEdge:
    node: Product
    cursor: str


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    query: strawberry.Private[ProductQuery]

    @strawberry.field
    async def total_count(self, info: Info) -> int:
        return await service.count_products(info.context.services.engine, self.query)


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
        found = await service.list_locations(info.context.services.engine, kind.value if kind else None)
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
        products, has_next = await service.page_products(
            info.context.services.engine, query, first=limit, after_id=after_id
        )
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
            found = await service.product_by_slug(info.context.services.engine, slug or "")
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
