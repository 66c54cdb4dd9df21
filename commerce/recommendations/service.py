"""Item-to-item recommendations: products often bought together with what the customer bought.

`recommend` reads the customer's purchases (only with consent: see `history`), then the
co-purchase statistics for those products, leaving out what they already own and what is not
for sale. `rebuild` recomputes the statistics from the orders of customers who consent now, so
it also removes the contribution of anyone who withdrew (run it from cron; it is idempotent).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import permutations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog import service as catalog
from commerce.orders import history as orders
from commerce.recommendations.history import RECOMMENDATIONS, consented_purchases
from commerce.recommendations.models import CopurchasePair, CopurchaseRebuild
from core.db import writer
from vault.service import Vault

__all__ = ["RebuildReport", "rebuild", "recommend"]

BATCH = 500


@dataclass(frozen=True, slots=True)
class RebuildReport:
    customers: int  # consenting customers whose orders count
    orders: int
    pairs: int


async def _products(engine: AsyncEngine, purchases: list[orders.Purchase]) -> dict[int, set[int]]:
    """Order id -> the products its lines are variants of."""
    scopes = await catalog.variant_scopes(engine, sorted({p.variant_id for p in purchases})) if purchases else {}
    baskets: dict[int, set[int]] = defaultdict(set)
    for p in purchases:
        if p.variant_id in scopes:
            baskets[p.order_id].add(scopes[p.variant_id][0])
    return baskets


async def recommend(engine: AsyncEngine, vault: Vault, customer_key: int, first: int) -> list[int]:
    """Up to `first` product ids for the customer, best first; `[]` without PERSONALIZATION consent."""
    if first <= 0:
        return []
    bought = await consented_purchases(engine, vault, [customer_key], RECOMMENDATIONS)
    owned = set().union(*(await _products(engine, bought)).values()) if bought else set()
    if not owned:
        return []
    score = func.sum(CopurchasePair.orders)
    stmt = (
        select(CopurchasePair.other_product_id, score)
        .where(CopurchasePair.product_id.in_(owned), CopurchasePair.other_product_id.not_in(owned))
        .group_by(CopurchasePair.other_product_id)
        .order_by(score.desc(), CopurchasePair.other_product_id)
        .limit(first * 4)  # room for what is no longer for sale
    )
    async with engine.connect() as conn:
        candidates = [product_id for product_id, _ in await conn.execute(stmt)]
    for_sale = await catalog.products_by_ids(engine, candidates)  # published only
    return [p for p in candidates if p in for_sale][:first]


async def rebuild(engine: AsyncEngine, vault: Vault, now: datetime) -> RebuildReport:
    """Recount every pair from consenting customers' orders (guest orders never count)."""
    everyone = await orders.customers_with_purchases(engine)
    pairs: Counter[tuple[int, int]] = Counter()
    counted_customers = counted_orders = 0
    for start in range(0, len(everyone), BATCH):
        purchases = await consented_purchases(engine, vault, everyone[start : start + BATCH], RECOMMENDATIONS)
        counted_customers += len({p.customer_key for p in purchases})
        baskets = await _products(engine, purchases)
        counted_orders += len(baskets)
        for products in baskets.values():
            pairs.update(permutations(sorted(products), 2))
    async with writer(engine).begin() as conn:
        await conn.execute(delete(CopurchasePair))
        rows = [{"product_id": a, "other_product_id": b, "orders": n} for (a, b), n in sorted(pairs.items())]
        for start in range(0, len(rows), BATCH):
            await conn.execute(insert(CopurchasePair), rows[start : start + BATCH])
        await conn.execute(
            insert(CopurchaseRebuild).values(
                built_at=now, customers=counted_customers, orders=counted_orders, pairs=len(rows)
            )
        )
    return RebuildReport(counted_customers, counted_orders, len(rows))
