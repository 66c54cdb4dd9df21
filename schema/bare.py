"""Strawberry objects built without their `__init__`, for types listed by the hundred on a page.

A strawberry type's generated `__init__` takes keyword-only arguments and costs ~0.6 us a call; a
bare instance with its fields set costs less than half. The types a storefront page lists (products,
variants, prices, categories, edges) have an `of` constructor built on `bare`, which must set
every field `__init__` would (tests/schema/test_bare.py checks). `object.__new__` is bound here
once: looked up on `object` in every call it costs a fifth of the constructor.

Those types also declare `__slots__` (`Node` too, an empty one, or its subclasses would get a
`__dict__` anyway): an object is one block instead of an object and a values array, its fields
are read at a fixed offset, and, having no room for the mark `strawberry.cast` sets on an object,
it cannot be cast, so the compiled executor need not look for that mark on each one
(schema/compiled/plan.py, `castable`). Under callgrind a storefront request ran 0.8% fewer
instructions (10.73-10.76 -> 10.65 M). Output types only: strawberry reads a field's default off
the class, where a slot leaves its descriptor, and an input type would publish that as a default.
"""

from __future__ import annotations

__all__ = ["bare"]

bare = object.__new__
