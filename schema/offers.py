"""Personal offers in the API: `Customer.offers`, the promotions meant for this customer now.

The same pricing engine applies them in every channel (the till included) when the cart is the
customer's; an offer by purchase history is there only with PERSONALIZATION consent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.types import Info

from commerce.pricing import service as pricing
from commerce.pricing.engine import Promotion
from core.ids import to_global_id

__all__ = ["PersonalOffer", "offers_of"]


@strawberry.type(description="A promotion meant for this customer: by loyalty tier, or by what they bought.")
class PersonalOffer:
    id: strawberry.ID
    description: str
    code: str | None = strawberry.field(description="Null: applied to their cart automatically.")
    kind: str = strawberry.field(description="percentage or fixed_amount")
    value: Decimal = strawberry.field(description="Percent (10 = 10%) or an amount in the offer's currency.")
    currency: str | None
    ends_at: datetime | None
    tiers: list[str] = strawberry.field(description="The loyalty tiers it is for (empty: any).")

    @classmethod
    def of(cls, p: Promotion) -> PersonalOffer:
        return cls(
            id=strawberry.ID(to_global_id("Promotion", p.id)),
            description=p.description,
            code=p.code,
            kind=p.kind,
            value=p.value,
            currency=p.currency,
            ends_at=p.ends_at,
            tiers=sorted(p.target_tiers),
        )


async def offers_of(info: Info, customer_key: int) -> list[PersonalOffer]:
    services = info.context.services
    found = await pricing.offers_for(
        services.engine, services.vault, customer_key, channel=info.context.channel.code, now=services.clock.now()
    )
    return [PersonalOffer.of(p) for p in found]
