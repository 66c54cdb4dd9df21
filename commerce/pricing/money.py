"""Money is a Decimal amount with its currency, never a float; rounding to the minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["MINOR_UNITS", "quantize"]

# Digits after the decimal point, per ISO 4217, for the currencies we sell in.
MINOR_UNITS = {"PLN": 2, "EUR": 2, "USD": 2, "GBP": 2, "CZK": 2, "HUF": 2, "JPY": 0}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half-up (the Polish retail convention)."""
    exponent = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)
