"""Email templates per language: a subject and a plain-text body, filled with `str.format`.

Polish is the default (the shop's home market); English for customers who chose it. A template
names its parameters in braces; a missing parameter is a programming error caught by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from commerce.pricing.money import quantize

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "STORE_TIMEZONE",
    "TEMPLATES",
    "Rendered",
    "language_of",
    "local_date",
    "money_text",
    "render",
]

DEFAULT_LANGUAGE: Final = "pl"
LANGUAGES: Final = ("pl", "en")
STORE_TIMEZONE: Final = ZoneInfo("Europe/Warsaw")  # the stores' clocks: a date in a message is theirs
_SYMBOLS: Final = {"PLN": "zł"}
_POLISH_DIGITS: Final = str.maketrans(",.", " ,")  # thousands by a space, the decimal comma


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "password_reset": {
        "pl": (
            "Ustaw nowe hasło",
            "Dzień dobry,\n\nktoś (mamy nadzieję, że Ty) poprosił o nowe hasło do konta w naszym sklepie.\n"
            "Ustaw je tutaj w ciągu {valid_minutes} minut:\n\n{link}\n\n"
            "Link działa tylko raz. Jeśli to nie Ty, zignoruj tę wiadomość: hasło się nie zmieni.\n",
        ),
        "en": (
            "Set a new password",
            "Hello,\n\nsomeone (we hope it was you) asked for a new password for your account at our shop.\n"
            "Set it here within {valid_minutes} minutes:\n\n{link}\n\n"
            "The link works once. If it was not you, ignore this message: your password stays as it is.\n",
        ),
    },
    "order_confirmation": {
        "pl": (
            "Potwierdzenie zamówienia {order_number}",
            "Dziękujemy za zamówienie {order_number} na kwotę {total}.\n\nDamy znać, gdy będzie gotowe.\n",
        ),
        "en": (
            "Order {order_number} confirmed",
            "Thank you for your order {order_number}, {total} in total.\n\nWe will let you know when it is ready.\n",
        ),
    },
    "ready_for_pickup": {
        "pl": (
            "Zamówienie {order_number} czeka na odbiór",
            "Zamówienie {order_number} czeka na Ciebie w sklepie {store}.\n"
            "Odbierz je do {collect_by}. Zabierz ze sobą numer zamówienia.\n",
        ),
        "en": (
            "Order {order_number} is ready for pickup",
            "Your order {order_number} is waiting for you at {store}.\n"
            "Collect it by {collect_by}. Bring your order number with you.\n",
        ),
    },
}


def language_of(preference: str | None) -> str:
    """The first supported language of an Accept-Language-like preference ("en-GB,en;q=0.8"), else Polish."""
    for part in (preference or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def money_text(amount: Decimal, currency: str) -> str:
    """An amount as Polish customers see it, in every language: "1 299,99 zł" (other currencies
    by their code, "12,50 EUR")."""
    digits = f"{quantize(amount, currency):,f}".translate(_POLISH_DIGITS)  # "1,299.99" -> "1 299,99"
    return f"{digits} {_SYMBOLS.get(currency, currency)}"


def local_date(moment: datetime, *, until: bool = False) -> str:
    """The stores' calendar date of a UTC moment ("2026-12-03"). `until`: the moment something
    ends, named by the last day it still holds (an end at midnight names the day before)."""
    if until:
        moment -= timedelta(microseconds=1)
    return moment.astimezone(STORE_TIMEZONE).date().isoformat()


def render(template: str, language: str, params: dict[str, str]) -> Rendered:
    versions = TEMPLATES[template]
    subject, body = versions.get(language) or versions[DEFAULT_LANGUAGE]
    return Rendered(subject.format(**params), body.format(**params))
