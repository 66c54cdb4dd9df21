"""The payment provider interface: the same four calls for every method and channel.

Checkout never calls a provider inside a database write transaction: it reserves and writes
the order as PENDING, commits, authorizes, then confirms or compensates. `reference` is the
order's own reference, so a provider can make every call idempotent on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from core.errors import DomainError

__all__ = [
    "Authorization",
    "PaymentDeclined",
    "PaymentError",
    "PaymentErrorCode",
    "PaymentProvider",
    "PaymentRequest",
    "PaymentTimeout",
]


class PaymentErrorCode(StrEnum):
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"


class PaymentError(DomainError):
    code: str = PaymentErrorCode.PAYMENT_FAILED


class PaymentDeclined(PaymentError):
    code: str = PaymentErrorCode.PAYMENT_DECLINED


class PaymentTimeout(PaymentError):
    """The provider did not answer in time: the authorization is voided, nothing is kept."""

    code: str = PaymentErrorCode.PAYMENT_TIMEOUT


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    reference: str  # the order's reference: idempotent at the provider
    amount: Decimal
    currency: str
    method: str  # "card" | "blik"
    token: str | None = None  # the card token or BLIK code the client collected


@dataclass(frozen=True, slots=True)
class Authorization:
    reference: str  # the provider's id of this payment
    amount: Decimal


class PaymentProvider(Protocol):
    async def authorize(self, request: PaymentRequest) -> Authorization:
        """Hold the amount; raises `PaymentDeclined` or `PaymentTimeout`."""
        ...

    # `idempotency_key`: a provider that already took a call with this key does not take it again
    # (a retry whose first answer was lost; see `commerce.payments.calls`).
    # `reference`: the provider's payment id (`Authorization.reference`). A void also takes the
    # order's reference an authorization was requested under (`PaymentRequest.reference`): after a
    # timeout the gateway has no other, and voids whatever that request may have held, if anything.
    async def capture(self, reference: str, amount: Decimal, *, idempotency_key: str | None = None) -> None: ...

    async def void(self, reference: str, *, idempotency_key: str | None = None) -> None: ...

    async def refund(self, reference: str, amount: Decimal, *, idempotency_key: str | None = None) -> None: ...
