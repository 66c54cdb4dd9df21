"""Demo data: deterministic, fast (bulk inserts), and only into an empty database.

Channels web, mobile, store and call-center (all PLN); a warehouse and three stores, two of
them click & collect; categories; N products with one to three variants, prices and stock;
the demo customer demo@example.com / demo-password, whose personal data goes through the vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.catalog import models as catalog
from commerce.catalog.service import search_text
from commerce.customers import service as customers
from commerce.customers.passwords import hash_password
from commerce.inventory.models import StockLevel
from commerce.pricing.models import Price
from commerce.pricing.promotion_models import PromotionRow
from core.clock import Clock, SystemClock
from core.db import writer
from core.settings import Settings
from vault.service import Vault

__all__ = ["CHANNELS", "LOCATIONS", "SeedReport", "seed"]

CHANNELS = [
    ("web", "Web shop", "WEB", "PLN"),
    ("mobile", "Mobile app", "MOBILE", "PLN"),
    ("store", "Stores (POS)", "STORE", "PLN"),
    ("call-center", "Call center", "CALL_CENTER", "PLN"),
]
LOCATIONS = [
    ("WH-STRYKOW", "Central warehouse", "WAREHOUSE", "Stryków", False),
    ("ST-WAW", "Warszawa Złote Tarasy", "STORE", "Warszawa", True),
    ("ST-KRK", "Kraków Galeria", "STORE", "Kraków", True),
    ("ST-GDN", "Gdańsk Outlet", "STORE", "Gdańsk", False),
]
CATEGORIES = [
    ("outdoor", "Outdoor"),
    ("kitchen", "Kitchen"),
    ("electronics", "Electronics"),
    ("garden", "Garden"),
    ("toys", "Toys"),
    ("books", "Books"),
    ("sport", "Sport"),
    ("home", "Home"),
]
ADJECTIVES = ["Trail", "Urban", "Classic", "Nordic", "Compact", "Pro", "Eco", "Family", "Travel", "Studio"]
NOUNS = ["Backpack", "Kettle", "Headphones", "Lantern", "Blender", "Tent", "Jacket", "Speaker", "Mug", "Lamp"]
SIZES = ["S", "M", "L"]
BATCH = 2_000
DEMO_CUSTOMER = customers.Registration(
    email="demo@example.com",
    password="demo-password",  # noqa: S106 - the README's published demo account
    first_name="Demo",
    last_name="Customer",
    phone="+48 600 100 200",
)
DEMO_ADDRESS = customers.Address(
    name="Demo Customer", line1="ul. Przykładowa 1", postal_code="00-001", city="Warszawa", country="PL"
)


@dataclass(frozen=True, slots=True)
class SeedReport:
    seeded: bool
    products: int = 0
    variants: int = 0


async def _insert(conn: AsyncConnection, table: object, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        await conn.execute(insert(table), rows[start : start + BATCH])  # type: ignore[arg-type]


def _catalog_rows(products: int) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    product_rows, variant_rows, price_rows, stock_rows = [], [], [], []
    variant_id = 0
    for i in range(1, products + 1):
        name = f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[(i // len(ADJECTIVES)) % len(NOUNS)]} {i}"
        variant_count = 1 + i % 3
        skus = [f"SKU-{i:06d}-{SIZES[v]}" for v in range(variant_count)]
        product_rows.append(
            {
                "id": i,
                "slug": f"product-{i}",
                "name": name,
                "description": f"{name}: demo product number {i}.",
                "category_id": 1 + i % len(CATEGORIES),
                "published": True,
                "search_text": search_text(name, skus),
            }
        )
        for v, sku in enumerate(skus):
            variant_id += 1
            variant_rows.append(
                {"id": variant_id, "product_id": i, "sku": sku, "name": f"{name} {SIZES[v]}", "published": True}
            )
            price_rows.append(
                {
                    "variant_id": variant_id,
                    "currency": "PLN",
                    "amount": Decimal(19 + (i * 37 + v * 10) % 480) + Decimal("0.99"),
                }
            )
            for location_id in range(1, len(LOCATIONS) + 1):
                on_hand = (i * 13 + v * 5 + location_id * 7) % 25
                stock_rows.append(
                    {
                        "variant_id": variant_id,
                        "location_id": location_id,
                        "on_hand": on_hand,
                        "reserved": 0,  # only orders hold stock
                    }
                )
    return product_rows, variant_rows, price_rows, stock_rows


async def _seed_customers(conn: AsyncConnection, vault: Vault, clock: Clock) -> None:
    password_hash = await hash_password(DEMO_CUSTOMER.password)
    await customers.insert_customer(conn, vault, clock, DEMO_CUSTOMER, password_hash, [DEMO_ADDRESS])


async def _seed_promotions(conn: AsyncConnection) -> None:
    """The demo discount code: WELCOME10, 10% off the whole cart, in every channel."""
    await _insert(
        conn,
        PromotionRow,
        [
            {
                "code": "WELCOME10",
                "description": "Welcome: 10% off",
                "kind": "percentage",
                "value": Decimal(10),
                "product_ids": [],
                "category_ids": [],
                "channels": [],
                "active": True,
            }
        ],
    )


async def seed(
    engine: AsyncEngine,
    *,
    products: int = 200,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> SeedReport:
    """Fill an empty database with the demo; a database that has channels is left alone.

    `settings` choose the vault's keys: pass the ones the gateway will run with (default: the
    development defaults), or the demo customer's data will not decrypt.
    """
    clock = clock or SystemClock()
    vault = Vault.from_settings(settings or Settings(), engine, clock)
    async with writer(engine).begin() as conn:
        if (await conn.execute(select(func.count()).select_from(catalog.Channel))).scalar_one():
            return SeedReport(seeded=False)
        channel_rows = [dict(zip(("code", "name", "kind", "currency"), c, strict=True)) for c in CHANNELS]
        await _insert(conn, catalog.Channel, channel_rows)
        await _insert(
            conn,
            catalog.Location,
            [dict(zip(("code", "name", "kind", "city", "click_and_collect"), loc, strict=True)) for loc in LOCATIONS],
        )
        await _insert(
            conn,
            catalog.Category,
            [{"id": n, "slug": slug, "name": name} for n, (slug, name) in enumerate(CATEGORIES, start=1)],
        )
        product_rows, variant_rows, price_rows, stock_rows = _catalog_rows(products)
        await _insert(conn, catalog.Product, product_rows)
        await _insert(conn, catalog.ProductVariant, variant_rows)
        await _insert(conn, Price, price_rows)
        await _insert(conn, StockLevel, stock_rows)
        # VAT classes: books at the super-reduced rate; everything else standard (the column's default).
        books = [row["id"] for row in product_rows if CATEGORIES[row["category_id"] - 1][0] == "books"]
        await conn.execute(
            update(catalog.Product).where(catalog.Product.id.in_(books)).values(tax_class="super_reduced")
        )
        await _seed_customers(conn, vault, clock)
        await _seed_promotions(conn)
    return SeedReport(seeded=True, products=len(product_rows), variants=len(variant_rows))
