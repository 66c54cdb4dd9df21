"""Inventory operations for the warehouse and ERP: `stockSync` sets on-hand counts."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from commerce.inventory import sync
from schema.errors import UserError, user_error

__all__ = ["InventoryMutation", "StockLevelInput", "StockSyncPayload"]


@strawberry.input(description="An on-hand count of one SKU at one location, as the ERP or WMS has it.")
class StockLevelInput:
    sku: str
    location_code: str
    on_hand: int


@strawberry.type
class StockSyncPayload:
    updated: int = strawberry.field(description="Counts applied (whether or not they changed what was on hand).")
    user_errors: list[UserError]


@strawberry.type
class InventoryMutation:
    @strawberry.mutation(
        description="Set on-hand counts per SKU and location (ERP/WMS). A count below what orders hold "
        "reserved is refused for its line (BELOW_RESERVED); the other lines apply. "
        f"At most {sync.MAX_COUNTS_PER_SYNC} per call."
    )
    async def stock_sync(self, info: Info, levels: list[StockLevelInput]) -> StockSyncPayload:
        counts = [sync.StockCount(sku=x.sku, location_code=x.location_code, on_hand=x.on_hand) for x in levels]
        result = await sync.sync_counts(info.context.services.engine, counts, actor=info.context.principal.subject)
        return StockSyncPayload(updated=result.updated, user_errors=[user_error(p) for p in result.problems])
