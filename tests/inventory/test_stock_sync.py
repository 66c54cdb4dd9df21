"""stockSync: on-hand counts from the ERP/WMS, each change a stock movement and a stock.moved event."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from commerce.catalog.models import Location, ProductVariant
from commerce.events.models import OutboxEvent
from commerce.inventory.models import StockLevel, StockMovement
from gateway.runtime import Runtime

SYNC = """mutation($levels: [StockLevelInput!]!) { stockSync(levels: $levels) {
    updated userErrors { code field message } } }"""


@dataclass
class Shelf:
    """One variant with known stock: 10 on hand (3 reserved) at ST-WAW, no row at ST-KRK."""

    sku: str
    variant_id: int
    waw: int
    krk: int


@pytest.fixture
async def shelf(runtime: Runtime) -> Shelf:
    async with runtime.services.sessions() as session, session.begin():
        variant_id, sku = (await session.execute(select(ProductVariant.id, ProductVariant.sku).limit(1))).one()
        codes = {code: id_ for code, id_ in await session.execute(select(Location.code, Location.id))}
        await session.execute(delete(StockLevel).where(StockLevel.variant_id == variant_id))
        session.add(StockLevel(variant_id=variant_id, location_id=codes["ST-WAW"], on_hand=10, reserved=3))
    return Shelf(sku=sku, variant_id=variant_id, waw=codes["ST-WAW"], krk=codes["ST-KRK"])


async def _levels(runtime: Runtime, variant_id: int) -> dict[int, tuple[int, int]]:
    async with runtime.services.sessions() as session:
        rows = await session.execute(
            select(StockLevel.location_id, StockLevel.on_hand, StockLevel.reserved).where(
                StockLevel.variant_id == variant_id
            )
        )
        return {loc: (on_hand, reserved) for loc, on_hand, reserved in rows}


async def test_counts_apply_per_line_and_a_count_below_reserved_is_refused_alone(
    gql, token_for, runtime: Runtime, shelf: Shelf
) -> None:
    levels = [
        {"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 2},  # 3 are reserved there
        {"sku": shelf.sku, "locationCode": "ST-KRK", "onHand": 7},  # no row yet: created
        {"sku": "NO-SUCH-SKU", "locationCode": "ST-WAW", "onHand": 1},
        {"sku": shelf.sku, "locationCode": "NOWHERE", "onHand": 1},
        {"sku": shelf.sku, "locationCode": "ST-GDN", "onHand": -1},
        {"sku": shelf.sku, "locationCode": "ST-KRK", "onHand": 9},  # the same level twice
    ]
    body = await gql.data(SYNC, {"levels": levels}, headers=token_for("integration", subject="erp-1"))
    result = body["stockSync"]
    assert result["updated"] == 1
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("BELOW_RESERVED", ["levels", "0", "onHand"]),
        ("SKU_NOT_FOUND", ["levels", "2", "sku"]),
        ("LOCATION_NOT_FOUND", ["levels", "3", "locationCode"]),
        ("INVALID_QUANTITY", ["levels", "4", "onHand"]),
        ("DUPLICATE_COUNT", ["levels", "5", "sku"]),
    ]
    assert await _levels(runtime, shelf.variant_id) == {shelf.waw: (10, 3), shelf.krk: (7, 0)}


async def test_each_change_is_a_stock_movement_and_a_stock_moved_event(
    gql, token_for, runtime: Runtime, shelf: Shelf
) -> None:
    levels = [
        {"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 4},
        {"sku": shelf.sku, "locationCode": "ST-KRK", "onHand": 0},  # created empty: nothing moved
    ]
    body = await gql.data(SYNC, {"levels": levels}, headers=token_for("integration", subject="erp-1"))
    assert body["stockSync"] == {"updated": 2, "userErrors": []}
    again = await gql.data(SYNC, {"levels": levels[:1]}, headers=token_for("admin", subject="admin-1"))
    assert again["stockSync"] == {"updated": 1, "userErrors": []}  # applied, but nothing changed
    async with runtime.services.sessions() as session:
        movements = (await session.execute(select(StockMovement))).scalars().all()
        events = (await session.execute(select(OutboxEvent))).scalars().all()
    assert [(m.location_id, m.variant_id, m.on_hand_delta, m.reserved_delta, m.reason, m.actor) for m in movements] == [
        (shelf.waw, shelf.variant_id, -6, 0, "sync", "erp-1")
    ]
    assert [(e.event_type, e.aggregate_id) for e in events] == [("stock.moved", f"{shelf.waw}:{shelf.variant_id}")]
    payload = events[0].payload  # the ERP's own names, and the level after the change
    assert (payload["sku"], payload["locationCode"], payload["onHandDelta"]) == (shelf.sku, "ST-WAW", -6)
    assert (payload["onHand"], payload["reserved"], payload["reason"]) == (4, 3, "sync")
    assert await _levels(runtime, shelf.variant_id) == {shelf.waw: (4, 3), shelf.krk: (0, 0)}


async def test_a_count_may_equal_what_is_reserved_but_not_fall_below_it(
    gql, token_for, runtime: Runtime, shelf: Shelf
) -> None:
    async with runtime.services.sessions() as session, session.begin():
        await session.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == shelf.variant_id, StockLevel.location_id == shelf.waw)
            .values(reserved=5)
        )
    headers = token_for("integration", subject="erp-1")
    low = await gql.data(SYNC, {"levels": [{"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 4}]}, headers=headers)
    assert [e["code"] for e in low["stockSync"]["userErrors"]] == ["BELOW_RESERVED"]
    exact = await gql.data(
        SYNC, {"levels": [{"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 5}]}, headers=headers
    )
    assert exact["stockSync"] == {"updated": 1, "userErrors": []}
    assert await _levels(runtime, shelf.variant_id) == {shelf.waw: (5, 5)}


async def test_too_many_counts_in_one_call_are_refused_whole(gql, token_for, shelf: Shelf) -> None:
    from commerce.inventory.sync import MAX_COUNTS_PER_SYNC

    levels = [{"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 10}] * (MAX_COUNTS_PER_SYNC + 1)
    body = await gql.data(SYNC, {"levels": levels}, headers=token_for("integration"))
    assert body["stockSync"]["updated"] == 0
    assert [(e["code"], e["field"]) for e in body["stockSync"]["userErrors"]] == [("TOO_MANY_COUNTS", ["levels"])]


@pytest.mark.parametrize("role", ["staff", "agent", "customer"])
async def test_only_the_integration_role_and_admins_sync_stock(gql, token_for, shelf: Shelf, role: str) -> None:
    kwargs = {"staff": {"location": "ST-WAW"}, "customer": {"subject": "1"}}.get(role, {})
    body = await gql.execute(
        SYNC, {"levels": [{"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": 0}]}, headers=token_for(role, **kwargs)
    )
    assert body["data"] is None or body["data"]["stockSync"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_counts_racing_reservations_never_fall_below_what_is_reserved(
    gql, token_for, runtime: Runtime, shelf: Shelf
) -> None:
    """Checkouts reserve with a conditional update while the ERP lowers the count: no 500, no oversell.

    The sync reads `reserved` under the stock row's lock; without it, on PostgreSQL a
    reservation committed between its read and its update would break the CHECK (a 500).
    """
    from core.db import writer

    engine = runtime.services.engine
    async with runtime.services.sessions() as session, session.begin():
        await session.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == shelf.variant_id, StockLevel.location_id == shelf.waw)
            .values(on_hand=20, reserved=0)
        )
    at_waw = (StockLevel.variant_id == shelf.variant_id) & (StockLevel.location_id == shelf.waw)

    async def reserve(i: int) -> int:
        await asyncio.sleep(i * 0.01)
        async with writer(engine).begin() as conn:
            taken = await conn.execute(
                update(StockLevel)
                .where(at_waw, StockLevel.on_hand - StockLevel.reserved >= 1)
                .values(reserved=StockLevel.reserved + 1)
            )
            await asyncio.sleep(0.02)  # a checkout's transaction does more before it commits
            return int(taken.rowcount)

    async def count(i: int, on_hand: int) -> dict[str, Any]:
        await asyncio.sleep(i * 0.04)
        levels = [{"sku": shelf.sku, "locationCode": "ST-WAW", "onHand": on_hand}]
        body = await gql.data(SYNC, {"levels": levels}, headers=token_for("integration"))
        return dict(body["stockSync"])

    counts = (16, 14, 12, 11, 10, 9, 8)
    # both at once: the syncs start while the reservations are still coming
    reservations, syncs = await asyncio.gather(
        asyncio.gather(*(reserve(i) for i in range(30))),
        asyncio.gather(*(count(i, n) for i, n in enumerate(counts))),
    )
    assert all(s["updated"] == 1 or [e["code"] for e in s["userErrors"]] == ["BELOW_RESERVED"] for s in syncs)
    on_hand, reserved = (await _levels(runtime, shelf.variant_id))[shelf.waw]
    assert reserved == sum(reservations) <= on_hand
