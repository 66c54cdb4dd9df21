"""Strawberry objects built without their `__init__`, for types listed by the hundred on a page.

A strawberry type's generated `__init__` takes keyword-only arguments and costs ~0.6 us a call; a
bare instance with its fields set costs less than half. The types a storefront page lists (products,
variants, prices, categories, edges) have an `of` constructor built on `bare`, which must set
every field `__init__` would (tests/schema/test_bare.py checks). `object.__new__` is bound here
once: looked up on `object` in every call it costs a fifth of the constructor.
"""

from __future__ import annotations

__all__ = ["bare"]

bare = object.__new__
