"""What text the gateway accepts: what a database can store, and what a person can see.

Two questions asked of every string a client sends:
- `storable`: could PostgreSQL and SQLite take it at all? Neither stores a NUL byte in text,
  and a lone surrogate (JSON's `"\\ud800"`) cannot be encoded as UTF-8. Sent anyway, they end
  in a driver error instead of an answer.
- `visible_text`: is it a name or an address line a person can read? Control characters,
  bidirectional overrides and isolates (which make "evil.exe" read as "exe.live"), other
  invisible format characters, private-use, unassigned and surrogate code points are refused,
  and so is text with no letter or digit at all (a name of only spaces or zero-width
  characters). Zero-width joiners stay allowed inside a name: scripts such as Devanagari and
  Persian need them.
"""

from __future__ import annotations

import unicodedata

__all__ = ["storable", "visible_text"]

_REFUSED_CATEGORIES = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
_JOINERS = {"\u200c", "\u200d"}  # ZERO WIDTH NON-JOINER and JOINER: part of how some scripts are written
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}  # Hangul fillers: letters by category, yet invisible


def storable(value: str) -> bool:
    """Whether both databases can store (and compare against) `value`."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def visible_text(value: str) -> bool:
    """Whether `value` is text a person sees as written: see the module's docstring."""
    seen = False
    for char in value:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (category == "Cf" and char not in _JOINERS) or char in _BLANK_LETTERS:
            return False
        seen = seen or category[0] in "LN"
    return seen
