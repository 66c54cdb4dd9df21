"""Catalog tables: channels and locations (where we sell), categories, products, variants,
their media, options, tags, and collections."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # WEB MOBILE STORE CALL_CENTER MARKETPLACE
    currency: Mapped[str] = mapped_column(String(3))


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # WAREHOUSE STORE
    city: Mapped[str] = mapped_column(String(100))
    click_and_collect: Mapped[bool] = mapped_column(Boolean, default=False)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Lower-cased name and SKUs, so `search` is one indexed-friendly LIKE on both backends.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # The VAT class (commerce/pricing/tax_models.py): what rate its gross prices include.
    tax_class: Mapped[str] = mapped_column(String(16), default="standard", server_default="standard")


class ProductVariant(Base):
    __tablename__ = "product_variants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    published: Mapped[bool] = mapped_column(Boolean, default=True)


class ProductMedia(Base):
    """An image of a product: only its address and shape; the bytes live on a CDN or object store."""

    __tablename__ = "product_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    alt_text: Mapped[str] = mapped_column(String(500), default="")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ProductOption(Base):
    """A dimension a product's variants differ in (Size, Colour), its values in display order."""

    __tablename__ = "product_options"
    __table_args__ = (UniqueConstraint("product_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Small and read whole with the option (display order); variants' values are rows below.
    values: Mapped[list[str]] = mapped_column(JSON, default=list)


class VariantOptionValue(Base):
    """A variant's value for one option of its product: `Size: M`."""

    __tablename__ = "variant_option_values"
    __table_args__ = (Index("ix_variant_option_values_option_value", "option_id", "value"),)

    variant_id: Mapped[int] = mapped_column(ForeignKey("product_variants.id", ondelete="CASCADE"), primary_key=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("product_options.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))


class ProductTag(Base):
    """Free-form merchandising labels; rule-based collections select by them."""

    __tablename__ = "product_tags"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Collection(Base):
    """A merchandised list: hand-picked in order (`manual`) or every product matching `rules`."""

    __tablename__ = "collections"
    __table_args__ = (CheckConstraint("kind IN ('manual', 'rule')", name="known_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16))
    # rule collections: every condition must hold; keys category_slug, tag, price_min, price_max
    rules: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    image_url: Mapped[str | None] = mapped_column(String(2000))
    published: Mapped[bool] = mapped_column(Boolean, default=True)


class CollectionProduct(Base):
    """A manual collection's products, in the merchandiser's order."""

    __tablename__ = "collection_products"
    __table_args__ = (Index("ix_collection_products_position", "collection_id", "position"),)

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
