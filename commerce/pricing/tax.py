"""VAT in gross prices: the tax a line's gross total includes, rounded per line.

Prices are gross (VAT included). A line's VAT is `total * rate / (1 + rate)`, rounded half-up
to the currency's minor unit once per line; the order's tax total is the sum of its lines'
VAT, so it always adds up to what the lines show.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.catalog.models import Product, ProductVariant
from commerce.pricing.money import quantize
from commerce.pricing.tax_models import STANDARD, TaxClass

__all__ = ["tax_rates_by_variant_ids", "vat_included"]


def vat_included(gross: Decimal, rate: Decimal, currency: str) -> Decimal:
    """The VAT inside a gross amount at `rate` (0.23 for 23 %), rounded to the minor unit."""
    return quantize(gross * rate / (1 + rate), currency)


async def tax_rates_by_variant_ids(engine: AsyncEngine, variant_ids: Sequence[int]) -> dict[int, Decimal]:
    """The VAT rate of each variant's product (its tax class; the standard rate when unknown)."""
    if not variant_ids:
        return {}
    stmt = (
        select(ProductVariant.id, TaxClass.rate)
        .join(Product, Product.id == ProductVariant.product_id)
        .outerjoin(TaxClass, TaxClass.code == Product.tax_class)
        .where(ProductVariant.id.in_(variant_ids))
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
        standard = (await conn.execute(select(TaxClass.rate).where(TaxClass.code == STANDARD))).scalar_one()
    return {vid: Decimal(rate if rate is not None else standard) for vid, rate in rows}
