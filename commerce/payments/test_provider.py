"""The built-in test provider: approves everything except the documented test cards.

| token (card number or BLIK code) | outcome |
| --- | --- |
| `4000000000000002`, BLIK `000002` | declined (`PAYMENT_DECLINED`) |
| `4000000000000119`, BLIK `000119` | no answer in time (`PAYMENT_TIMEOUT`) |
| anything else | approved |

It keeps every call in memory, so tests can count authorizations, captures and refunds. A test
can make the provider refuse the next captures, voids and refunds (`unreachable`: it is down),
or take them and lose the answer (`answers_lost`); a call with an idempotency key it already
took is not taken again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
    unreachable: int = 0  # the next this many captures, voids and refunds fail: the provider is down
    answers_lost: int = 0  # the next this many are taken, but the caller hears a timeout
    _taken: set[str] = field(default_factory=set)

    async def _network(self) -> None:
        await asyncio.sleep(self.delay)

    async def _call(self, key: str | None, take: Callable[[], None]) -> None:
        await self._network()
        if self.unreachable > 0:
            self.unreachable -= 1
            raise PaymentTimeout("The payment provider could not be reached.")
        if key is None or key not in self._taken:
            take()
            if key is not None:
                self._taken.add(key)
        if self.answers_lost > 0:
            self.answers_lost -= 1
            raise PaymentTimeout("The payment provider's answer was lost.")

    async def authorize(self, request: PaymentRequest) -> Authorization:
        await self._network()
        token = (request.token or "").replace(" ", "")
        if token in TIMEOUT_TOKENS:
            raise PaymentTimeout("The payment provider did not answer in time; nothing was charged.")
        if token in DECLINE_TOKENS:
            raise PaymentDeclined("The payment was declined; nothing was charged.")
        self.authorized.append(request)
        return Authorization(reference=f"test_{request.reference}", amount=request.amount)

    async def capture(self, reference: str, amount: Decimal, *, idempotency_key: str | None = None) -> None:
        await self._call(idempotency_key, lambda: self.captured.append((reference, amount)))

    async def void(self, reference: str, *, idempotency_key: str | None = None) -> None:
        await self._call(idempotency_key, lambda: self.voided.append(reference))

    async def refund(self, reference: str, amount: Decimal, *, idempotency_key: str | None = None) -> None:
        await self._call(idempotency_key, lambda: self.refunded.append((reference, amount)))
