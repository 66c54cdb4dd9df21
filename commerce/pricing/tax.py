"""VAT in gross prices: the tax a line's gross total includes, rounded per line.

Prices are gross (VAT included). A line's VAT is `total * rate / (1 + rate)`, rounded half-up
to the currency's minor unit once per line; the order's tax total is the sum of its lines'
VAT, so it always adds up to what the lines show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, func, select

from commerce.catalog.models import Product, ProductVariant
from commerce.pricing.money import quantize
from commerce.pricing.tax_models import STANDARD, TaxClass
from core.db import Connectable

__all__ = ["TaxedVariant", "taxed_variants", "vat_included"]


def vat_included(gross: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The VAT inside a gross amount at `rate` (0.23 for 23 %), rounded to the minor unit."""
    return quantize(gross * rate / (1 + rate), currency)


@dataclass(frozen=True, slots=True)
class TaxedVariant:
    """What an order line snapshots of a variant: its SKU, name and VAT rate."""

    sku: str
    name: str
    rate: Decimal


_STANDARD = select(TaxClass.rate).where(TaxClass.code == STANDARD).scalar_subquery()
# Built once (every checkout runs it): building it cost more CPU than SQLite takes to answer it.
_TAXED = (
    select(ProductVariant.id, ProductVariant.sku, ProductVariant.name, func.coalesce(TaxClass.rate, _STANDARD))
    .join(Product, Product.id == ProductVariant.product_id)
    .outerjoin(TaxClass, TaxClass.code == Product.tax_class)
    .where(ProductVariant.id.in_(bindparam("ids", expanding=True)), ProductVariant.published.is_(True))
)


async def taxed_variants(engine: Connectable, variant_ids: Sequence[int]) -> dict[int, TaxedVariant]:
    """Published variants with their VAT rate, in one query (checkout's snapshot of each line)."""
    if not variant_ids:
        return {}
    async with engine.connect() as conn:
        rows = (await conn.execute(_TAXED, {"ids": list(variant_ids)})).all()
    return {vid: TaxedVariant(sku, name, Decimal(rate)) for vid, sku, name, rate in rows}
