"""The outbox and the stock movement log: written with the caller's change, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, select, update

from commerce.catalog.models import Location, ProductVariant
from commerce.events.models import OutboxEvent
from commerce.events.outbox import emit
from commerce.inventory.models import StockLevel, StockMovement
from commerce.inventory.movements import record_movement
from gateway.runtime import Runtime


async def test_an_event_commits_with_the_callers_transaction(runtime: Runtime) -> None:
    async with runtime.services.sessions() as session, session.begin():
        await emit(
            session,
            aggregate_type="order",
            aggregate_id="42",
            event_type="order.placed",
            payload={"orderKey": "42", "total": Decimal("12.30"), "at": datetime(2026, 1, 2, tzinfo=UTC)},
        )
    async with runtime.services.sessions() as session:
        event = (await session.execute(select(OutboxEvent))).scalar_one()
    assert (event.aggregate_type, event.aggregate_id, event.event_type) == ("order", "42", "order.placed")
    assert event.payload == {"orderKey": "42", "total": "12.30", "at": "2026-01-02T00:00:00+00:00"}
    assert event.created_at.tzinfo is not None


async def test_a_rolled_back_change_leaves_no_event_and_no_movement(runtime: Runtime) -> None:
    with pytest.raises(RuntimeError):
        async with runtime.services.sessions() as session, session.begin():
            await record_movement(
                session,
                location_id=1,
                variant_id=1,
                on_hand_delta=0,
                reserved_delta=2,
                reason="reserve",
                order_key="7",
                actor="1001",
            )
            raise RuntimeError("the order failed after the reservation")
    async with runtime.services.sessions() as session:
        assert (await session.execute(select(OutboxEvent))).first() is None
        assert (await session.execute(select(StockMovement))).first() is None


async def test_a_movement_is_logged_and_announced_without_its_actor(runtime: Runtime) -> None:
    async with runtime.services.sessions() as session, session.begin():
        sku = (await session.execute(select(ProductVariant.sku).where(ProductVariant.id == 9))).scalar_one()
        code = (await session.execute(select(Location.code).where(Location.id == 3))).scalar_one()
        await session.execute(delete(StockLevel).where(StockLevel.variant_id == 9, StockLevel.location_id == 3))
        session.add(StockLevel(variant_id=9, location_id=3, on_hand=4, reserved=1))
        await session.flush()
        await session.execute(  # a hand-over: the held unit leaves the shelf
            update(StockLevel)
            .where(StockLevel.variant_id == 9, StockLevel.location_id == 3)
            .values(on_hand=StockLevel.on_hand - 1, reserved=StockLevel.reserved - 1)
        )
        await record_movement(
            session,
            location_id=3,
            variant_id=9,
            on_hand_delta=-1,
            reserved_delta=-1,
            reason="hand_over",
            order_key="7",
            actor="staff-waw",
        )
    async with runtime.services.sessions() as session:
        movement = (await session.execute(select(StockMovement))).scalar_one()
        event = (await session.execute(select(OutboxEvent))).scalar_one()
    assert (movement.location_id, movement.variant_id, movement.on_hand_delta, movement.reserved_delta) == (
        3,
        9,
        -1,
        -1,
    )
    assert (movement.reason, movement.order_key, movement.actor) == ("hand_over", "7", "staff-waw")
    assert (event.aggregate_type, event.aggregate_id, event.event_type) == ("stock_level", "3:9", "stock.moved")
    assert event.payload == {
        "locationId": 3,
        "variantId": 9,
        "sku": sku,
        "locationCode": code,
        "onHandDelta": -1,
        "reservedDelta": -1,
        "onHand": 3,  # as the caller's update left the level
        "reserved": 0,
        "reason": "hand_over",
        "orderKey": "7",
    }
    assert "staff-waw" not in str(event.payload)


async def test_a_payload_that_is_not_ids_and_amounts_is_refused(runtime: Runtime) -> None:
    async with runtime.services.sessions() as session, session.begin():
        with pytest.raises(TypeError):
            await emit(session, aggregate_type="order", aggregate_id="1", event_type="x", payload={"o": object()})
        with pytest.raises(ValueError, match="naive"):
            await emit(
                session, aggregate_type="order", aggregate_id="1", event_type="x", payload={"t": datetime(2026, 1, 1)}
            )
