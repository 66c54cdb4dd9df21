"""The `Money` type: a Decimal amount (a string on the wire) and its currency."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from commerce.pricing.money import Money as DomainMoney

__all__ = ["Money"]


@strawberry.type
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, money: DomainMoney) -> Money:
        return cls(amount=money.amount, currency=money.currency)
