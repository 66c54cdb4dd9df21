"""What the catalog hands out: small immutable records, cheap to build in bulk."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Category",
    "Channel",
    "Collection",
    "Location",
    "Media",
    "Product",
    "ProductOption",
    "SelectedOption",
    "Variant",
]


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    code: str
    name: str
    kind: str
    currency: str


@dataclass(frozen=True, slots=True)
class Location:
    id: int
    code: str
    name: str
    kind: str
    city: str
    click_and_collect: bool


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    slug: str
    name: str
    description: str
    category_id: int | None


@dataclass(frozen=True, slots=True)
class Variant:
    id: int
    product_id: int
    sku: str
    name: str


@dataclass(frozen=True, slots=True)
class Media:
    """An image's address on the CDN and its shape (so a page reserves the space before it loads)."""

    id: int
    product_id: int
    url: str
    alt_text: str
    width: int | None
    height: int | None
    position: int


@dataclass(frozen=True, slots=True)
class ProductOption:
    id: int
    product_id: int
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SelectedOption:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Collection:
    id: int
    handle: str
    title: str
    description: str
    kind: str  # manual | rule
    rules: dict[str, str]
    image_url: str | None
