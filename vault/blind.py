"""Blind indexes: a keyed HMAC of a normalised value finds a person without storing the value.

The key is separate from the KEK, so KEK rotation leaves every index valid.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

__all__ = ["normalise_email", "normalise_phone", "blind_index"]

_NOT_DIGITS = re.compile(r"\D")


def normalise_email(email: str) -> str:
    """Case, padding and Unicode form folded (NFKC: "zoë" typed composed or decomposed, fullwidth
    "ＡＤＡ"), so that one address looks up one account however a keyboard spelt it."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).lower()).strip()


def normalise_phone(phone: str) -> str:
    """E.164-ish: `+` and digits only ("00" as an international prefix becomes "+")."""
    text = phone.strip()
    digits = _NOT_DIGITS.sub("", text)
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


_NORMALISERS = {"email": normalise_email, "phone": normalise_phone}


def blind_index(key: bytes, kind: str, value: str) -> bytes:
    normalised = _NORMALISERS[kind](value)
    return hmac.new(key, f"{kind}\x00{normalised}".encode(), hashlib.sha256).digest()
