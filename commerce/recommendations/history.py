"""The one reader of purchase history for personalization, and the consent check in front of it.

Recommendations, the co-purchase statistics and purchase-targeted offers all read what people
bought through `consented_purchases`, which first asks the consent ledger (through the vault)
which of them currently consent to the activity's purpose (privacy.toml `[processing]`). No
consent: no history, so nothing personal can be derived from it. Asked on every call, so a
withdrawal counts from the next request on.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.customers import service as customers
from commerce.orders import history as orders
from vault.service import Vault

__all__ = ["OFFERS", "RECOMMENDATIONS", "consented_purchases"]

RECOMMENDATIONS = "recommendations"  # activities named in policies/privacy.toml [processing]
OFFERS = "personal_offers"


async def consented_purchases(
    engine: AsyncEngine, vault: Vault, customer_keys: Sequence[int], activity: str
) -> list[orders.Purchase]:
    """What these customers bought, only for those who consent to `activity` now (guests never)."""
    subjects = await customers.subjects_by_ids(engine, customer_keys)
    allowed = await vault.permitted(sorted(set(subjects.values())), activity)
    return await orders.purchases(engine, [key for key, subject in subjects.items() if subject in allowed])
