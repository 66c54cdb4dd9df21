"""Blind indexes: a keyed HMAC of a normalised value finds a person without storing the value.

The key is separate from the KEK, so KEK rotation leaves every index valid.

What a database dump alone shows: which rows share a phone number (equal digests), nothing
more, because the HMAC needs the key. With the key as well, a phone number (about 10^9
candidates per country) or a guessed email is found by trying them all: a plain hash would
offer that to anyone with the dump, which is why the index is keyed and the key lives
outside the database, guarded like the KEK.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

__all__ = ["blind_index", "normalise_card", "normalise_email", "normalise_phone"]


def normalise_email(email: str) -> str:
    """Case, padding and Unicode form folded (NFKC: "zoë" typed composed or decomposed, fullwidth
    "ＡＤＡ"), so that one address looks up one account however a keyboard spelt it."""  # noqa: RUF002 - fullwidth on purpose
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).lower()).strip()


def normalise_phone(phone: str) -> str:
    """E.164-ish: `+` and ASCII digits only ("00" as an international prefix becomes "+"; a
    fullwidth or Arabic-Indic digit counts as the digit it is)."""
    text = unicodedata.normalize("NFKC", phone).strip()
    digits = "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def normalise_card(number: str) -> str:
    """A loyalty card number as its digits only: spaces or dashes a till scanner or a person adds fall away."""
    text = unicodedata.normalize("NFKC", number)
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


_NORMALISERS = {"email": normalise_email, "phone": normalise_phone, "loyalty_card": normalise_card}


def blind_index(key: bytes, kind: str, value: str) -> bytes:
    normalised = _NORMALISERS[kind](value)
    return hmac.new(key, f"{kind}\x00{normalised}".encode(), hashlib.sha256).digest()
