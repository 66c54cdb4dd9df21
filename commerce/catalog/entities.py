"""What the catalog hands out: small immutable records, cheap to build in bulk."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Category", "Channel", "Location", "Product", "Variant"]


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
