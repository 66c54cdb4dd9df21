"""Money is a Decimal amount with its currency; never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["Money", "MINOR_UNITS", "quantize"]

# Digits after the decimal point, per ISO 4217, for the currencies we sell in.
MINOR_UNITS = {"PLN": 2, "EUR": 2, "USD": 2, "GBP": 2, "CZK": 2, "HUF": 2, "JPY": 0}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half-up (the Polish retail convention)."""
    exponent = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise TypeError("Money takes a Decimal, never a float")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(quantize(Decimal(0), currency), currency)
