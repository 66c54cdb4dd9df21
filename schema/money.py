"""The `Money` type: a Decimal amount (a string on the wire) and its currency."""

from __future__ import annotations

from decimal import Decimal

import strawberry

__all__ = ["Money"]


@strawberry.type
class Money:
    amount: Decimal
    currency: str
