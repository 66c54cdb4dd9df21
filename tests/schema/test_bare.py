"""Constructors that skip a strawberry type's `__init__` must still set every one of its fields."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from commerce.catalog import entities
from schema.catalog import Category, Product, ProductVariant
from schema.listing import ProductEdge
from schema.money import Money


def _as_init_builds(obj: object) -> object:
    """The same object built through the type's own `__init__`, from the fields `obj` has."""
    cls = type(obj)
    return cls(**{name: getattr(obj, name) for name in _init_fields(cls)})


def test_every_bare_constructor_sets_every_field_as_init_would():
    product = Product.of(entities.Product(id=7, slug="mug", name="Mug", description="A mug", category_id=3))
    variant_row = entities.Variant(id=11, product_id=7, sku="MUG-1", name="Blue")
    category_row = entities.Category(id=3, slug="kitchen", name="Kitchen")
    built = [
        product,
        ProductVariant.of(variant_row),
        Category.of(category_row),
        Money.of(Decimal("9.99"), "PLN"),
        ProductEdge.of(product, "cursor"),
    ]
    for obj in built:
        assert obj == _as_init_builds(obj), type(obj).__name__
        assert _attributes_set(obj) == _init_fields(type(obj)), type(obj).__name__


def test_a_slotted_type_has_a_slot_for_each_field_and_no_other():
    """A field added to a slotted type without its slot fails at the first `of`; a slot without a field is waste."""
    slotted: list[type] = [Product, ProductVariant, Category, Money, ProductEdge]
    for cls in slotted:
        assert not hasattr(cls(**dict.fromkeys(_init_fields(cls))), "__dict__"), cls.__name__
        assert _slots(cls) == _init_fields(cls), cls.__name__


def _slots(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ for name in vars(klass).get("__slots__", ())}


def _attributes_set(obj: object) -> set[str]:
    """The attributes `obj` holds: its `__dict__`, or for a class with `__slots__` the slots that are set."""
    if hasattr(obj, "__dict__"):
        return set(vars(obj))
    return {name for name in _slots(type(obj)) if hasattr(obj, name)}


def _init_fields(cls: type) -> set[str]:
    """The fields `__init__` sets (a field with a resolver of its own is not one of them)."""
    return {f.name for f in dataclasses.fields(cls) if f.init}
