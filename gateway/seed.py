"""Demo data: deterministic, fast (bulk inserts), and only into an empty database.

Channels web, mobile, store and call-center (all PLN); a warehouse and three stores, two of
them click & collect; categories; N products with options (sizes, and colours for every fourth),
a variant per combination of option values, media URLs, tags, prices (every fifth product on
sale, with a compare-at price) and stock; three collections (two rule-based, one hand-picked);
the demo customer demo@example.com / demo-password, whose personal data goes through the vault.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
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
# Each category with the adjectives and nouns its products are named from, so a product's
# name fits its category (no kettles under Toys).
CATEGORIES = [
    ("outdoor", "Outdoor", ["Trail", "Alpine", "Nordic", "Compact"], ["Tent", "Lantern", "Backpack", "Sleeping Bag"]),
    ("kitchen", "Kitchen", ["Classic", "Steel", "Family", "Compact"], ["Kettle", "Blender", "Frying Pan", "Mug"]),
    ("electronics", "Electronics", ["Studio", "Pro", "Smart", "Travel"], ["Headphones", "Speaker", "Charger", "Radio"]),
    ("garden", "Garden", ["Eco", "Sturdy", "Green", "Classic"], ["Hose", "Planter", "Pruner", "Watering Can"]),
    ("toys", "Toys", ["Happy", "Junior", "Rainbow", "Wooden"], ["Puzzle", "Building Blocks", "Plush Bear", "Kite"]),
    ("books", "Books", ["Illustrated", "Pocket", "Complete", "Weekend"], ["Cookbook", "Atlas", "Field Guide", "Novel"]),
    ("sport", "Sport", ["Pro", "Urban", "Training", "Team"], ["Yoga Mat", "Football", "Running Jacket", "Dumbbells"]),
    ("home", "Home", ["Nordic", "Cosy", "Studio", "Classic"], ["Lamp", "Blanket", "Cushion", "Rug"]),
]
SIZES = ["S", "M", "L"]
COLOURS = ["Black", "Sand"]  # every fourth product also comes in colours: a variant per size and colour
MEDIA_BASE_URL = "https://cdn.omnigate.example/products"  # images live on a CDN; the database keeps addresses
COLLECTIONS = [
    ("sale", "On sale", "Everything at a reduced price.", "rule", {"tag": "sale"}),
    ("under-100", "Gifts under 100 zł", "Small presents that still delight.", "rule", {"price_max": "100"}),
    ("editors-picks", "Editors' picks", "Hand-picked by our team, in their order.", "manual", {}),
]
EDITORS_PICKS = [7, 3, 12, 1, 25, 40]
BATCH = 2_000
# Products whose rows (variants, prices, stock, ...) are made and written at a time: all of a
# million products' rows at once took 7.4 GB of memory; in chunks the seed stays in a few hundred MB.
CHUNK = 25_000
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


Progress = Callable[[int, int], None]  # (products written, of how many)


async def _bulk(conn: AsyncConnection, table: Any, rows: list[dict]) -> None:
    """COPY on PostgreSQL (a million products in minutes), batched INSERTs elsewhere.

    (Every bulk table goes through here: INSERTs of a million products' options, media and tags
    took longer than all the COPYs, and an `IN` over 125,000 ids exceeds asyncpg's 32,767 parameters.)"""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name != "postgresql" or any(list(row) != columns for row in rows):
        await _insert(conn, table, rows)
        return
    driver: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's own connection
    records = [tuple(_copied(row[c]) for c in columns) for row in rows]
    await driver.copy_records_to_table(table.__tablename__, records=records, columns=columns)


def _copied(value: Any) -> Any:
    """A value as COPY takes it: a JSON column's list or dict as its text (asyncpg's json codec)."""
    return json.dumps(value) if isinstance(value, list | dict) else value


async def _insert(conn: AsyncConnection, table: object, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        await conn.execute(insert(table), rows[start : start + BATCH])  # type: ignore[arg-type]


@dataclass(slots=True)
class _CatalogRows:
    """Every catalog table's rows, keyed by the model they go into, in insertion order."""

    products: list[dict] = field(default_factory=list)
    variants: list[dict] = field(default_factory=list)
    prices: list[dict] = field(default_factory=list)
    stock: list[dict] = field(default_factory=list)
    options: list[dict] = field(default_factory=list)
    option_values: list[dict] = field(default_factory=list)
    media: list[dict] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)


def _variant_combinations(i: int) -> tuple[list[tuple[str, list[str]]], list[tuple[str, ...]]]:
    """Product i's options (name, values) and one variant per combination of their values."""
    options = [("Size", SIZES[: 1 + i % 3])]
    if i % 4 == 0:
        options.append(("Colour", COLOURS))
    combinations: list[tuple[str, ...]] = [()]
    for _, values in options:
        combinations = [(*combo, value) for combo in combinations for value in values]
    return options, combinations


def _catalog_chunks(products: int, size: int) -> Iterator[_CatalogRows]:
    """The catalog's rows, `size` products and everything of theirs at a time, in id order."""
    rows = _CatalogRows()
    variant_id = option_id = 0
    for i in range(1, products + 1):
        category = i % len(CATEGORIES)
        _, _, adjectives, nouns = CATEGORIES[category]
        turn = i // len(CATEGORIES)
        name = f"{adjectives[(turn // len(nouns)) % len(adjectives)]} {nouns[turn % len(nouns)]} {i}"
        options, combinations = _variant_combinations(i)
        skus = ["-".join([f"SKU-{i:06d}", *(value.upper() for value in combo)]) for combo in combinations]
        on_sale = i % 5 == 0
        rows.products.append(
            {
                "id": i,
                "slug": f"product-{i}",
                "name": name,
                "description": f"{name}: demo product number {i}.",
                "category_id": 1 + category,
                "published": True,
                "search_text": search_text(name, skus),
                # VAT classes: books at the super-reduced rate, everything else standard.
                "tax_class": "super_reduced" if CATEGORIES[category][0] == "books" else "standard",
            }
        )
        rows.tags += [{"product_id": i, "tag": tag} for tag in _tags(i, name, on_sale)]
        rows.media += [
            {
                "product_id": i,
                "url": f"{MEDIA_BASE_URL}/product-{i}/{n}.jpg",
                "alt_text": f"{name}, view {n}",
                "width": 1600,
                "height": 1200 if n == 1 else 1600,
                "position": n,
            }
            for n in range(1, 2 + i % 3)
        ]
        option_ids = []
        for position, (option_name, values) in enumerate(options):
            option_id += 1
            option_ids.append(option_id)
            rows.options.append(
                {"id": option_id, "product_id": i, "name": option_name, "position": position, "values": values}
            )
        for v, (sku, combo) in enumerate(zip(skus, combinations, strict=True)):
            variant_id += 1
            rows.variants.append(
                {"id": variant_id, "product_id": i, "sku": sku, "name": " / ".join([name, *combo]), "published": True}
            )
            rows.option_values += [
                {"variant_id": variant_id, "option_id": oid, "value": value}
                for oid, value in zip(option_ids, combo, strict=True)
            ]
            amount = Decimal(19 + (i * 37 + v * 10) % 480) + Decimal("0.99")
            rows.prices.append(
                {
                    "variant_id": variant_id,
                    "currency": "PLN",
                    "amount": amount,
                    # on sale: the regular price was a quarter higher
                    "compare_at_amount": (amount * Decimal("1.25")).quantize(Decimal("1")) + Decimal("0.99")
                    if on_sale
                    else None,
                }
            )
            for location_id in range(1, len(LOCATIONS) + 1):
                on_hand = (i * 13 + v * 5 + location_id * 7) % 25
                rows.stock.append(
                    {
                        "variant_id": variant_id,
                        "location_id": location_id,
                        "on_hand": on_hand,
                        "reserved": 0,  # only orders hold stock
                    }
                )
        if i % size == 0 or i == products:
            yield rows
            rows = _CatalogRows()


def _tags(i: int, name: str, on_sale: bool) -> list[str]:
    tags = ["sale"] if on_sale else []
    if i % 7 == 0:
        tags.append("bestseller")
    if name.startswith("Eco"):
        tags.append("eco")
    return tags


async def _seed_collections(conn: AsyncConnection, products: int) -> None:
    """Two rule-based collections (a tag, a price ceiling) and one hand-picked, in its own order."""
    await _insert(
        conn,
        catalog.Collection,
        [
            {"id": n, "handle": handle, "title": title, "description": description, "kind": kind, "rules": rules}
            for n, (handle, title, description, kind, rules) in enumerate(COLLECTIONS, start=1)
        ],
    )
    picks = [p for p in EDITORS_PICKS if p <= products]
    await _insert(
        conn,
        catalog.CollectionProduct,
        [{"collection_id": 3, "product_id": p, "position": n} for n, p in enumerate(picks)],
    )


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
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> SeedReport:
    """Fill an empty database with the demo; a database that has channels is left alone.

    `settings` choose the vault's keys: pass the ones the gateway will run with (default: the
    development defaults), or the demo customer's data will not decrypt. `chunk`: products
    written at a time (memory), reported to `progress` after each.
    """
    if chunk < 1:
        raise ValueError("write at least one product at a time")
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
            [{"id": n, "slug": slug, "name": name} for n, (slug, name, _, _) in enumerate(CATEGORIES, start=1)],
        )
        written = variants = 0
        for rows in _catalog_chunks(products, chunk):
            await _bulk(conn, catalog.Product, rows.products)  # each table after those it refers to
            await _bulk(conn, catalog.ProductVariant, rows.variants)
            await _bulk(conn, Price, rows.prices)
            await _bulk(conn, StockLevel, rows.stock)
            await _bulk(conn, catalog.ProductOption, rows.options)
            await _bulk(conn, catalog.VariantOptionValue, rows.option_values)
            await _bulk(conn, catalog.ProductMedia, rows.media)
            await _bulk(conn, catalog.ProductTag, rows.tags)
            written, variants = written + len(rows.products), variants + len(rows.variants)
            if progress is not None:
                progress(written, products)
        await _seed_collections(conn, products)
        await _seed_customers(conn, vault, clock)
        await _seed_promotions(conn)
    return SeedReport(seeded=True, products=written, variants=variants)
