"""Strawberry objects built by the hundred per page, without their dataclass `__init__`.

A strawberry type's generated `__init__` takes keyword arguments only: one call costs ~0.6 us,
setting the same attributes on a bare instance ~0.25 us, and a storefront page builds ~180
objects (products, variants, their prices, categories, edges). A constructor that uses `bare`
must set every field of its type (tests/schema/test_bare.py compares each with `__init__`).
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["bare"]

T = TypeVar("T")


def bare(cls: type[T]) -> T:
    """An instance of `cls` with no field set yet: the caller sets them all."""
    instance: T = object.__new__(cls)
    return instance
