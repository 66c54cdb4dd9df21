"""On-hand counts from the ERP or WMS: each applied count is one stock movement (reason `sync`).

A count sets `on_hand` at one location; `reserved` (what orders hold) never changes here, so a
count below it is refused for that line (`BELOW_RESERVED`) while the other lines apply. All
the lines of one call are one transaction; the stock rows are locked in (location, variant)
order, the order checkout locks them in, so a sync and a checkout wait for each other instead
of deadlocking. `updated` counts the lines applied, whether or not their count differed from
what was on hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import service as catalog
from commerce.inventory.errors import CountProblem, InventoryErrorCode
from commerce.inventory.models import StockLevel
from commerce.inventory.movements import record_movement
from core.db import dialect_insert, session_factory, sqlite_write_queue

__all__ = ["MAX_COUNTS_PER_SYNC", "StockCount", "SyncResult", "sync_counts"]

MAX_COUNTS_PER_SYNC = 1000
SYNC_REASON = "sync"


@dataclass(frozen=True, slots=True)
class StockCount:
    sku: str
    location_code: str
    on_hand: int


@dataclass(slots=True)
class SyncResult:
    updated: int = 0
    problems: list[CountProblem] = field(default_factory=list)


def _problem(code: InventoryErrorCode, message: str, prefix: str, index: int, name: str) -> CountProblem:
    return CountProblem(code, message, [prefix, str(index), name])


async def sync_counts(
    engine: AsyncEngine, counts: Sequence[StockCount], *, actor: str | None, prefix: str = "levels"
) -> SyncResult:
    """Apply every valid count; report the others with their index under `prefix`."""
    result = SyncResult()
    if len(counts) > MAX_COUNTS_PER_SYNC:
        result.problems.append(
            CountProblem(
                InventoryErrorCode.TOO_MANY_COUNTS, f"At most {MAX_COUNTS_PER_SYNC} counts per call.", [prefix]
            )
        )
        return result
    variants = await catalog.variant_ids_by_skus(engine, {c.sku for c in counts})
    locations = await catalog.location_ids_by_codes(engine, {c.location_code for c in counts})
    wanted: dict[tuple[int, int], tuple[int, int]] = {}  # (variant, location) -> (index, on_hand)
    for i, count in enumerate(counts):
        variant, location = variants.get(count.sku), locations.get(count.location_code)
        if variant is None:
            result.problems.append(
                _problem(InventoryErrorCode.SKU_NOT_FOUND, f"No variant has SKU {count.sku!r}.", prefix, i, "sku")
            )
        elif location is None:
            result.problems.append(
                _problem(
                    InventoryErrorCode.LOCATION_NOT_FOUND,
                    f"No location {count.location_code!r}.",
                    prefix,
                    i,
                    "locationCode",
                )
            )
        elif count.on_hand < 0:
            result.problems.append(
                _problem(InventoryErrorCode.INVALID_QUANTITY, "A count cannot be negative.", prefix, i, "onHand")
            )
        elif (variant, location) in wanted:
            first = wanted[(variant, location)][0]
            result.problems.append(
                _problem(
                    InventoryErrorCode.DUPLICATE_COUNT,
                    f"Counted already at index {first}: that count applies.",
                    prefix,
                    i,
                    "sku",
                )
            )
        else:
            wanted[(variant, location)] = (i, count.on_hand)
    if not wanted:
        return result
    keys = sorted(wanted, key=lambda k: (k[1], k[0]))  # (location, variant): the order checkout locks in
    async with sqlite_write_queue(engine), session_factory(engine)() as session, session.begin():
        # Rows a count creates: absent ones start empty (racing another creator is harmless).
        await session.execute(
            dialect_insert(session.get_bind().dialect, StockLevel)
            .values([{"variant_id": v, "location_id": loc, "on_hand": 0, "reserved": 0} for v, loc in keys])
            .on_conflict_do_nothing(index_elements=["variant_id", "location_id"])
        )
        locked = await session.execute(
            select(StockLevel.variant_id, StockLevel.location_id, StockLevel.on_hand, StockLevel.reserved)
            .where(tuple_(StockLevel.variant_id, StockLevel.location_id).in_(keys))
            .order_by(StockLevel.location_id, StockLevel.variant_id)
            .with_for_update()
        )
        for variant, location, on_hand, reserved in locked:
            index, counted = wanted[(variant, location)]
            if counted < reserved:
                result.problems.append(
                    _problem(
                        InventoryErrorCode.BELOW_RESERVED,
                        f"{counted} on hand is fewer than the {reserved} that orders hold reserved there.",
                        prefix,
                        index,
                        "onHand",
                    )
                )
                continue
            result.updated += 1
            if counted == on_hand:
                continue
            await session.execute(
                update(StockLevel)
                .where(StockLevel.variant_id == variant, StockLevel.location_id == location)
                .values(on_hand=counted)
            )
            await record_movement(
                session,
                location_id=location,
                variant_id=variant,
                on_hand_delta=counted - on_hand,
                reserved_delta=0,
                reason=SYNC_REASON,
                order_key=None,
                actor=actor,
            )
    result.problems.sort(key=lambda p: int(p.field[1]) if p.field and len(p.field) > 1 else -1)
    return result
