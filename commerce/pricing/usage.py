"""Promotion uses claimed by orders: limits enforced by conditional updates, not by counting.

`claim` is called inside checkout's unit of work, once per applied promotion; `release` gives
the uses back when the order does not go through (declined payment, abandoned checkout).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.pricing.promotion_models import PromotionRow, PromotionUsage, PromotionUsageCounter

__all__ = ["claim", "release"]

TOTAL = "*"


def _scope(customer_key: int | None) -> str | None:
    return f"c:{customer_key}" if customer_key is not None else None


async def _take(session: AsyncSession, promotion_id: int, scope: str, limit: int | None) -> bool:
    """One use under `limit` (None: unlimited, still counted), with one conditional update."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(PromotionUsageCounter)
        .values(promotion_id=promotion_id, scope=scope, used=0)
        .on_conflict_do_nothing(index_elements=["promotion_id", "scope"])
    )
    stmt = update(PromotionUsageCounter).where(
        PromotionUsageCounter.promotion_id == promotion_id, PromotionUsageCounter.scope == scope
    )
    if limit is not None:
        stmt = stmt.where(PromotionUsageCounter.used < limit)
    result = await session.execute(stmt.values(used=PromotionUsageCounter.used + 1))
    return bool(cast("CursorResult[Any]", result).rowcount)


async def claim(
    session: AsyncSession, promotion_ids: Sequence[int], *, customer_key: int | None, order_ref: str, now: datetime
) -> list[int]:
    """Record one use of each promotion for this order; returns the ids whose limit is reached
    (the caller then rolls its unit of work back: nothing is recorded)."""
    if not promotion_ids:
        return []
    limits = {
        row.id: (row.usage_limit, row.usage_limit_per_customer)
        for row in await session.execute(
            select(PromotionRow.id, PromotionRow.usage_limit, PromotionRow.usage_limit_per_customer).where(
                PromotionRow.id.in_(promotion_ids)
            )
        )
    }
    refused = []
    for promotion_id in sorted(set(promotion_ids)):  # one order of row locks for every checkout
        total_limit, customer_limit = limits.get(promotion_id, (None, None))
        ok = await _take(session, promotion_id, TOTAL, total_limit)
        scope = _scope(customer_key)
        if ok and scope is not None:
            ok = await _take(session, promotion_id, scope, customer_limit)
        if not ok:
            refused.append(promotion_id)
            continue
        session.add(
            PromotionUsage(promotion_id=promotion_id, customer_key=customer_key, order_ref=order_ref, used_at=now)
        )
    return refused


async def release(
    session: AsyncSession, promotion_ids: Sequence[int], *, customer_key: int | None, order_ref: str
) -> None:
    """Give back the uses an order claimed (it never went through)."""
    if not promotion_ids:
        return
    scopes = [TOTAL] + ([s] if (s := _scope(customer_key)) else [])
    for promotion_id in sorted(set(promotion_ids)):
        await session.execute(
            update(PromotionUsageCounter)
            .where(
                PromotionUsageCounter.promotion_id == promotion_id,
                PromotionUsageCounter.scope.in_(scopes),
                PromotionUsageCounter.used > 0,
            )
            .values(used=PromotionUsageCounter.used - 1)
        )
    await session.execute(
        delete(PromotionUsage).where(
            PromotionUsage.order_ref == order_ref, PromotionUsage.promotion_id.in_(promotion_ids)
        )
    )
