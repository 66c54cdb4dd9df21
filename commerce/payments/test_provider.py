"""The built-in test provider: approves everything except the documented test cards.

| token (card number or BLIK code) | outcome |
| --- | --- |
| `4000000000000002`, BLIK `000002` | declined (`PAYMENT_DECLINED`) |
| `4000000000000119`, BLIK `000119` | no answer in time (`PAYMENT_TIMEOUT`) |
| anything else | approved |

It keeps every call in memory, so tests can count authorizations, captures and refunds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal

from commerce.payments.provider import Authorization, PaymentDeclined, PaymentRequest, PaymentTimeout

__all__ = ["DECLINE_TOKENS", "TIMEOUT_TOKENS", "TestPaymentProvider"]

DECLINE_TOKENS = frozenset({"4000000000000002", "000002"})
TIMEOUT_TOKENS = frozenset({"4000000000000119", "000119"})


@dataclass(eq=False)
class TestPaymentProvider:
    """In-memory; `delay` seconds per call (0 by default) stand in for the network."""

    __test__ = False  # not a pytest test class

    delay: float = 0.0
    authorized: list[PaymentRequest] = field(default_factory=list)
    captured: list[tuple[str, Decimal]] = field(default_factory=list)
    voided: list[str] = field(default_factory=list)
    refunded: list[tuple[str, Decimal]] = field(default_factory=list)

    async def _network(self) -> None:
        await asyncio.sleep(self.delay)

    async def authorize(self, request: PaymentRequest) -> Authorization:
        await self._network()
        token = (request.token or "").replace(" ", "")
        if token in TIMEOUT_TOKENS:
            raise PaymentTimeout("The payment provider did not answer in time; nothing was charged.")
        if token in DECLINE_TOKENS:
            raise PaymentDeclined("The payment was declined; nothing was charged.")
        self.authorized.append(request)
        return Authorization(reference=f"test_{request.reference}", amount=request.amount)

    async def capture(self, reference: str, amount: Decimal) -> None:
        await self._network()
        self.captured.append((reference, amount))

    async def void(self, reference: str) -> None:
        await self._network()
        self.voided.append(reference)

    async def refund(self, reference: str, amount: Decimal) -> None:
        await self._network()
        self.refunded.append((reference, amount))
