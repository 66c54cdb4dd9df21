"""Collections in the API: merchandised product lists, hand-picked or rule-based."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import strawberry
from strawberry.types import Info

from commerce.catalog import entities, merchandising
from commerce.catalog.listing import ProductQuery, ProductSort
from core.ids import int_key, to_global_id
from schema.errors import bad_input
from schema.listing import (
    ProductCollectionSortKeys,
    ProductConnection,
    ProductFilter,
    product_connection,
    product_query,
)
from schema.node import Node, decode_int_id, register_node
from schema.pagination import PageInfo, check_first, decode_cursor, encode_cursor

__all__ = ["Collection", "CollectionQuery"]


def _decimal(raw: str | None) -> Decimal | None:
    try:
        return Decimal(raw) if raw is not None else None
    except InvalidOperation:
        return None


def _rule_query(collection: entities.Collection, currency: str) -> ProductQuery:
    """A rule collection's conditions (every one must hold) as a product query."""
    rules = collection.rules
    return ProductQuery(
        category_slug=rules.get("category_slug"),
        tag=rules.get("tag"),
        price_min=_decimal(rules.get("price_min")),
        price_max=_decimal(rules.get("price_max")),
        currency=currency,
    )


@strawberry.type(description="A merchandised list of products: hand-picked in order, or every product matching rules.")
class Collection(Node):
    id: strawberry.ID
    entity: strawberry.Private[entities.Collection]
    handle: str
    title: str
    description: str
    image_url: str | None

    @classmethod
    def of(cls, c: entities.Collection) -> Collection:
        return cls(
            id=strawberry.ID(to_global_id("Collection", c.id)),
            entity=c,
            handle=c.handle,
            title=c.title,
            description=c.description,
            image_url=c.image_url,
        )

    @strawberry.field(description="Manual collections default to the merchandiser's order, rule-based ones to ID.")
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        sort_key: ProductCollectionSortKeys = ProductCollectionSortKeys.MANUAL,
        reverse: bool = False,
    ) -> ProductConnection:
        manual = self.entity.kind == "manual"
        scope = (
            {"collection_id": self.entity.id}
            if manual
            else {"rule": _rule_query(self.entity, info.context.channel.currency)}
        )
        query = product_query(info, filter, None, **scope)
        key = sort_key.value if manual or sort_key is not ProductCollectionSortKeys.MANUAL else "ID"
        return await product_connection(info, query, ProductSort(key, reverse), first, after)


@strawberry.type
class CollectionEdge:
    node: Collection
    cursor: str


@strawberry.type
class CollectionConnection:
    edges: list[CollectionEdge]
    page_info: PageInfo


@strawberry.type
class CollectionQuery:
    @strawberry.field
    async def collections(self, info: Info, first: int | None = 20, after: str | None = None) -> CollectionConnection:
        limit = check_first(first, info.context.settings.max_page_size)
        after_id = decode_cursor("Collection", after)
        found, has_next = await merchandising.page_collections(
            info.context.services.engine, first=limit, after_id=after_id
        )
        edges = [CollectionEdge(node=Collection.of(c), cursor=encode_cursor("Collection", c.id)) for c in found]
        return CollectionConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=after_id is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field
    async def collection(
        self, info: Info, id: strawberry.ID | None = None, handle: str | None = None
    ) -> Collection | None:
        if (id is None) == (handle is None):
            raise bad_input("Give exactly one of `id` or `handle`.", ["id"])
        if id is not None:
            found = await info.context.loaders.collections.load(decode_int_id(id, "Collection"))
        else:
            found = await merchandising.collection_by_handle(info.context.services.engine, handle or "")
        return Collection.of(found) if found else None


@register_node("Collection")
async def _collection_node(info: Info, key: str) -> Collection | None:
    number = int_key(key)
    found = await info.context.loaders.collections.load(number) if number is not None else None
    return Collection.of(found) if found else None
