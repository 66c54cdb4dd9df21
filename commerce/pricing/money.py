"""Money is a Decimal amount with its currency, never a float; rounding to the minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["MINOR_UNITS", "minor_exponent", "quantize"]

# Digits after the decimal point, per ISO 4217, for the currencies we sell in.
MINOR_UNITS = {"PLN": 2, "EUR": 2, "USD": 2, "GBP": 2, "CZK": 2, "HUF": 2, "JPY": 0}

# The minor unit as an exponent (Decimal("0.01")), by digits: made once, not on every rounding
# (pricing a cart rounds a few times per line, on every cart change).
_EXPONENTS = {digits: Decimal(1).scaleb(-digits) for digits in {2, *MINOR_UNITS.values()}}


def minor_exponent(currency: str) -> Decimal:
    """The currency's minor unit (`Decimal("0.01")` for two digits), what `quantize` rounds to."""
    return _EXPONENTS[MINOR_UNITS.get(currency, 2)]


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half-up (the Polish retail convention)."""
    return amount.quantize(_EXPONENTS[MINOR_UNITS.get(currency, 2)], rounding=ROUND_HALF_UP)
