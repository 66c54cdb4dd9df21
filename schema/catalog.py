"""Catalog, stock and prices as the storefront reads them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from enum import Enum
from operator import attrgetter
from typing import Any, cast

import strawberry
from strawberry.types import Info

from commerce.catalog import entities, service
from commerce.pricing.price_book import PriceEntry
from core.ids import int_key, to_global_id
from schema.bare import bare
from schema.batch import batched, one
from schema.errors import bad_input
from schema.money import Money
from schema.node import Node, decode_int_id, register_node

# `to_global_id` typed as strawberry.ID (a NewType of str): the page's bare constructors call it
# without the NewType's call, ~90 times a storefront page.
node_id = cast(Callable[[str, object], strawberry.ID], to_global_id)
_available = attrgetter("available")

__all__ = [
    "CatalogQuery",
    "Category",
    "Channel",
    "Image",
    "Location",
    "PriceRange",
    "Product",
    "ProductOption",
    "ProductVariant",
    "SelectedOption",
    "SelectedOptionInput",
]


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
    __slots__ = ("id", "name", "slug")
    id: strawberry.ID
    slug: str
    name: str

    @classmethod
    def of(cls, c: entities.Category) -> Category:
        category = bare(cls)
        category.id = node_id("Category", c.id)
        category.slug = c.slug
        category.name = c.name
        return category


@strawberry.type(description="On hand minus reserved, at one location.")
class StockLevel:
    location_id: strawberry.Private[int]
    available: int

    @strawberry.field
    async def location(self, info: Info) -> Location:
        location: Location = await one(_locations, self, info.context)
        return location


@strawberry.type(description="One of a product's images: stored on a CDN, only its address and shape here.")
class Image:
    id: strawberry.ID
    url: str
    alt_text: str
    width: int | None
    height: int | None
    position: int

    @classmethod
    def of(cls, media: entities.Media) -> Image:
        return cls(
            id=strawberry.ID(to_global_id("ProductImage", media.id)),
            url=media.url,
            alt_text=media.alt_text,
            width=media.width,
            height=media.height,
            position=media.position,
        )


@strawberry.type(description="A dimension the variants differ in, e.g. Size with values S, M, L.")
class ProductOption:
    id: strawberry.ID
    name: str
    values: list[str]


@strawberry.type(description="A variant's value for one option, e.g. Size: M.")
class SelectedOption:
    name: str
    value: str


@strawberry.input(description='An option value to match, e.g. {name: "Size", value: "M"}.')
class SelectedOptionInput:
    name: str
    value: str


@strawberry.type
class PriceRange:
    min: Money
    max: Money


def _location_key(location_id: strawberry.ID | None) -> int | None:
    return decode_int_id(location_id, "Location", "locationId") if location_id is not None else None


async def _sellable(info: Info, variant_ids: list[int], location_key: int | None) -> list[bool]:
    """For each variant: priced in the channel's currency and in stock (at `location_key`, or anywhere).

    Loads for all of them at once, so a product's variants cost one batch, not one each."""
    loaders = info.context.loaders
    prices, stock = await asyncio.gather(loaders.prices.load_many(variant_ids), loaders.stock.load_many(variant_ids))
    return [
        price is not None
        and any(level.available > 0 for level in levels if location_key is None or level.location_id == location_key)
        for price, levels in zip(prices, stock, strict=True)
    ]


@strawberry.type
class ProductVariant(Node):
    __slots__ = ("id", "key", "name", "product_key", "sku")
    id: strawberry.ID
    key: strawberry.Private[int]
    product_key: strawberry.Private[int]
    sku: str
    name: str

    @classmethod
    def of(cls, v: entities.Variant) -> ProductVariant:
        variant = bare(cls)
        variant.id = node_id("ProductVariant", v.id)
        variant.key = v.id
        variant.product_key = v.product_id
        variant.sku = v.sku
        variant.name = v.name
        return variant

    async def _price(self, info: Info) -> PriceEntry:
        entry: PriceEntry | None = await info.context.loaders.prices.load(self.key)
        if entry is None:
            raise LookupError(f"variant {self.key} has no price in {info.context.channel.currency}")
        return entry

    @strawberry.field(description="The one price for the request's channel currency.")
    async def price(self, info: Info) -> Money:
        price: Money = await one(_prices, self, info.context)
        return price

    @strawberry.field(description="The regular price while `price` is a sale price; null when not on sale.")
    async def compare_at_price(self, info: Info) -> Money | None:
        entry: PriceEntry | None = await info.context.loaders.prices.load(self.key)
        if entry is None or entry.compare_at is None:
            return None
        return Money(amount=entry.compare_at, currency=info.context.channel.currency)

    @strawberry.field(
        description="Published, priced in the channel's currency, and in stock somewhere (or at `locationId`)."
    )
    async def available_for_sale(self, info: Info, location_id: strawberry.ID | None = None) -> bool:
        location_key = _location_key(location_id)
        if await info.context.loaders.products.load(self.product_key) is None:
            return False  # its product was withdrawn from sale
        return (await _sellable(info, [self.key], location_key))[0]

    @strawberry.field(description="This variant's value for each of its product's options, in option order.")
    async def selected_options(self, info: Info) -> list[SelectedOption]:
        chosen = await info.context.loaders.selected_options.load(self.key)
        return [SelectedOption(name=o.name, value=o.value) for o in chosen]

    @strawberry.field(description="At one location, or summed over all locations.")
    async def quantity_available(self, info: Info, location_id: strawberry.ID | None = None) -> int:
        quantity: int = await one(_quantities_available, self, info.context, {"locationId": location_id})
        return quantity

    @strawberry.field
    async def stock(self, info: Info) -> list[StockLevel]:
        levels: list[StockLevel] = await one(_stock_levels, self, info.context)
        return levels

    @strawberry.field(description="The product this variant belongs to (null once it is withdrawn from sale).")
    async def product(self, info: Info) -> Product | None:
        found = await info.context.loaders.products.load(self.product_key)
        return Product.of(found) if found else None


@strawberry.type
class Product(Node):
    __slots__ = ("category_key", "description", "id", "key", "name", "slug")
    id: strawberry.ID
    key: strawberry.Private[int]
    category_key: strawberry.Private[int | None]
    slug: str
    name: str
    description: str

    @classmethod
    def of(cls, p: entities.Product) -> Product:
        """Built without strawberry's keyword-only `__init__`, as the page's other objects are.

        A page builds ~180 objects (products, variants, their prices, categories, edges); one
        `__init__` call costs ~0.6 us, a bare instance with its fields set ~0.25 us. Such a
        constructor sets every field `__init__` would (tests/schema/test_bare.py checks).
        """
        product = bare(cls)
        product.id = node_id("Product", p.id)
        product.key = p.id
        product.category_key = p.category_id
        product.slug = p.slug
        product.name = p.name
        product.description = p.description
        return product

    @strawberry.field
    async def category(self, info: Info) -> Category | None:
        category: Category | None = await one(_categories, self, info.context)
        return category

    @strawberry.field
    async def variants(self, info: Info) -> list[ProductVariant]:
        variants: list[ProductVariant] = await one(_variants, self, info.context)
        return variants

    @strawberry.field(description="Any variant is available for sale (somewhere, or at `locationId`).")
    async def available_for_sale(self, info: Info, location_id: strawberry.ID | None = None) -> bool:
        location_key = _location_key(location_id)
        variants = await info.context.loaders.variants_by_product.load(self.key)
        return any(await _sellable(info, [v.id for v in variants], location_key))

    @strawberry.field(description="The lowest and highest variant price in the channel's currency.")
    async def price_range(self, info: Info) -> PriceRange:
        variants = await info.context.loaders.variants_by_product.load(self.key)
        entries = [e for e in await info.context.loaders.prices.load_many([v.id for v in variants]) if e is not None]
        if not entries:
            raise LookupError(f"product {self.key} has no price in {info.context.channel.currency}")
        currency = info.context.channel.currency
        amounts = [e.amount for e in entries]
        return PriceRange(
            min=Money(amount=min(amounts), currency=currency), max=Money(amount=max(amounts), currency=currency)
        )

    @strawberry.field(description="Images in display order (the first is the featured image).")
    async def media(self, info: Info) -> list[Image]:
        return [Image.of(m) for m in await info.context.loaders.media.load(self.key)]

    @strawberry.field(description="The first image, or null.")
    async def featured_image(self, info: Info) -> Image | None:
        media = await info.context.loaders.media.load(self.key)
        return Image.of(media[0]) if media else None

    @strawberry.field(description="What the variants differ in, each with its values in display order.")
    async def options(self, info: Info) -> list[ProductOption]:
        return [
            ProductOption(id=strawberry.ID(to_global_id("ProductOption", o.id)), name=o.name, values=list(o.values))
            for o in await info.context.loaders.options.load(self.key)
        ]

    @strawberry.field
    async def tags(self, info: Info) -> list[str]:
        tags: list[str] = await info.context.loaders.tags.load(self.key)
        return tags

    @strawberry.field(description="The variant with exactly these option values (e.g. Size M, Colour Black), or null.")
    async def variant_by_selected_options(
        self, info: Info, selected_options: list[SelectedOptionInput]
    ) -> ProductVariant | None:
        wanted = {(o.name, o.value) for o in selected_options}
        variants = await info.context.loaders.variants_by_product.load(self.key)
        chosen = await info.context.loaders.selected_options.load_many([v.id for v in variants])
        for variant, options in zip(variants, chosen, strict=True):
            if wanted == {(o.name, o.value) for o in options}:
                return ProductVariant.of(variant)
        return None


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


# ---------------------------------------------------------------- batch resolvers
# Each resolves its field for a whole level of objects with one loader call (schema/batch.py).


@batched("StockLevel", "location")
async def _locations(levels: Sequence[StockLevel], context: Any, args: dict[str, Any]) -> list[Any]:
    found = await context.loaders.locations.load_many([level.location_id for level in levels])
    return [Location.of(location) for location in found]


@batched("ProductVariant", "price")
async def _prices(variants: Sequence[ProductVariant], context: Any, args: dict[str, Any]) -> list[Any]:
    currency = context.channel.currency
    entries: list[PriceEntry | None] = await context.loaders.prices.load_many([v.key for v in variants])
    money = Money.of  # bound once, not per variant
    return [
        money(entry.amount, currency)
        if entry is not None
        else LookupError(f"variant {variant.key} has no price in {currency}")
        for variant, entry in zip(variants, entries, strict=True)
    ]


@batched("ProductVariant", "quantityAvailable")
async def _quantities_available(variants: Sequence[ProductVariant], context: Any, args: dict[str, Any]) -> list[Any]:
    stock = await context.loaders.stock.load_many([v.key for v in variants])
    location_id = args.get("locationId")
    if location_id is None:
        return [sum(map(_available, levels)) for levels in stock]
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
    shown = {key: Category.of(category) for key, category in found.items() if category is not None}  # once each
    return [shown.get(p.category_key) if p.category_key is not None else None for p in products]


@batched("Product", "variants")
async def _variants(products: Sequence[Product], context: Any, args: dict[str, Any]) -> list[Any]:
    found = await context.loaders.variants_by_product.load_many([p.key for p in products])
    variant = ProductVariant.of  # bound once, not per variant
    return [[variant(v) for v in variants] for variants in found]
