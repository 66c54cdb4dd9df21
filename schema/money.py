"""The `Money` type: a Decimal amount (a string on the wire) and its currency."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from schema.bare import bare

__all__ = ["Money"]


@strawberry.type
class Money:
    __slots__ = ("amount", "currency")
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: Decimal, currency: str) -> Money:
        """`Money(amount=..., currency=...)` at half the cost, for prices listed by the hundred (see `Product.of`)."""
        money = bare(cls)
        money.amount = amount
        money.currency = currency
        return money
