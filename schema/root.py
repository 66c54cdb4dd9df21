"""The one schema: each bounded context contributes its Query/Mutation/Subscription class here."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import Info

from schema.accounts import AccountMutation
from schema.cart import CartMutation, CartQuery, CartSubscription
from schema.catalog import CatalogQuery
from schema.collections import CollectionQuery
from schema.customers import CustomerMutation, CustomerQuery
from schema.data_subject import DataSubjectMutation, DataSubjectQuery
from schema.inventory import InventoryMutation
from schema.listing import ListingQuery
from schema.loyalty import LoyaltyMutation, LoyaltyQuery
from schema.node import Node, resolve_node
from schema.orders import OrderExchangeMutation, OrderMutation, OrderQuery
from schema.privacy_console import PrivacyConsoleQuery
from schema.reports import ReportQuery
from schema.scalars import scalar_map

__all__ = ["build_schema"]


@strawberry.type
class NodeQuery:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)


QUERIES: tuple[type, ...] = (
    NodeQuery,
    CatalogQuery,
    ListingQuery,
    CollectionQuery,
    CustomerQuery,
    CartQuery,
    OrderQuery,
    LoyaltyQuery,
    DataSubjectQuery,
    ReportQuery,
    PrivacyConsoleQuery,
)
MUTATIONS: tuple[type, ...] = (
    CustomerMutation,
    AccountMutation,
    CartMutation,
    OrderMutation,
    OrderExchangeMutation,
    InventoryMutation,
    LoyaltyMutation,
    DataSubjectMutation,
)
SUBSCRIPTIONS: tuple[type, ...] = (CartSubscription,)


def build_schema() -> strawberry.Schema:
    kwargs: dict[str, Any] = {}
    if MUTATIONS:
        kwargs["mutation"] = merge_types("Mutation", MUTATIONS)
    if SUBSCRIPTIONS:
        kwargs["subscription"] = merge_types("Subscription", SUBSCRIPTIONS)
    return strawberry.Schema(
        query=merge_types("Query", QUERIES),
        config=StrawberryConfig(scalar_map=scalar_map),
        **kwargs,
    )
