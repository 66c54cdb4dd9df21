"""Data-subject requests: how long one export and one erasure take for a customer with a long
history, and how long a batch of many erasures takes.

    .venv/bin/python bench/dsr.py [--orders 1000] [--batch 10000]

One SQLite database. The heavy customer has `--orders` shipped orders (address sealed, two
lines each), as many promotion uses, consent decisions and audited staff accesses,
and the batch is `--batch` ordinary customers, each with a consent and a cart, all queued as
ERASURE requests and finished by one `dsr run` (`run_many`: each source erases 500 people
at a time in a few statements, each step idempotent). Bar: one export or erasure under 2 s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from bench.databases import order_row
from commerce.cart.models import CartLineRow, CartRow
from commerce.catalog.models import ProductVariant
from commerce.customers import service as customers
from commerce.customers.passwords import hash_password
from commerce.orders.models import OrderLineRow, OrderRow
from commerce.pricing.promotion_models import PromotionRow, PromotionUsage
from core.clock import SystemClock
from core.db import create_engine, writer
from core.ids import new_token
from core.migrate import migrate
from core.settings import Settings
from gateway.privacy import build_requests
from gateway.seed import seed
from vault.audit import AuditEntry, AuditLog
from vault.keys import load_audit_key
from vault.service import Vault

KEYS: dict[str, Any] = {
    "kek": "1:" + base64.b64encode(b"omnigate-bench-kek-only-32bytes!").decode(),
    "blind_index_key": base64.b64encode(b"omnigate-bench-blind-index-32byt").decode(),
}


async def _customers(engine, vault, clock, count: int, prefix: str) -> list[tuple[int, str]]:
    password_hash = await hash_password("bench password")
    made = []
    async with writer(engine).begin() as conn:
        variant = (await conn.execute(select(ProductVariant.id).limit(1))).scalar_one()
        for n in range(count):
            reg = customers.Registration(
                email=f"{prefix}{n}@example.com", password="unused", first_name=f"First{n}", last_name=f"Last{n}"
            )
            key = await customers.insert_customer(conn, vault, clock, reg, password_hash)
            subject = await customers_subject(conn, key)
            await vault.record_consent(conn, subject, "MARKETING_EMAIL", True, channel="web", method="bench")
            cart = new_token()
            now = clock.now()
            await conn.execute(
                insert(CartRow).values(
                    id=cart,
                    customer_key=key,
                    status="active",
                    version=1,
                    discount_codes=[],
                    created_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(insert(CartLineRow).values(cart_id=cart, variant_id=variant, quantity=1))
            made.append((key, subject))
    return made


async def customers_subject(conn, key: int) -> str:
    from commerce.customers.models import Customer

    return str((await conn.execute(select(Customer.subject_id).where(Customer.id == key))).scalar_one())


async def _long_history(engine, vault, clock, audit: AuditLog, key: int, subject: str, size: int) -> None:
    """`size` shipped orders (address sealed, two lines each), promotion uses, consent decisions and
    audited staff accesses: a long-standing customer's history."""
    address = json.dumps({"name": "Ada Nowak", "line1": "ul. Prosta 1", "postalCode": "00-001", "city": "Warszawa"})
    async with writer(engine).begin() as conn:
        sealing = await vault.open_subject(conn, subject)
        now = clock.now()
        orders = [
            order_row(
                n,
                Decimal("246.00"),
                now,
                owner_key=f"customer:{key}",
                customer_key=key,
                subject_id=subject,
                shipping_address_sealed=vault.encrypt(sealing, "orders", "shipping_address", address),
                discount_codes=[],
                promotion_ids=[],
            )
            for n in range(size)
        ]
        ids = (await conn.execute(insert(OrderRow).returning(OrderRow.id), orders)).scalars().all()
        line = {
            "variant_id": 1,
            "location_id": 1,
            "sku": "BENCH-1",
            "name": "Bench product",
            "quantity": 1,
            "quantity_returned": 0,
            "unit_price": Decimal("123.00"),
            "subtotal": Decimal("123.00"),
            "discount": Decimal(0),
            "total": Decimal("123.00"),
            "tax_rate": Decimal("0.23"),
            "tax_amount": Decimal("23.00"),
            "amount_refunded": Decimal(0),
        }
        await conn.execute(insert(OrderLineRow), [{"order_id": i, **line} for i in ids for _ in range(2)])
        promotion = (await conn.execute(select(PromotionRow.id).limit(1))).scalar_one()
        await conn.execute(
            insert(PromotionUsage),
            [{"promotion_id": promotion, "customer_key": key, "order_ref": f"OG-{i:07d}", "used_at": now} for i in ids],
        )
        for n in range(size):
            await vault.record_consent(conn, subject, "MARKETING_SMS", n % 2 == 0, channel="web", method="bench")
    entries = [
        AuditEntry("agent-1", "agent", "call-center", "query customer", "Customer.email", str(key), "allowed", "t")
        for _ in range(size)
    ]
    await audit.append(entries)


async def main(orders: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp}/dsr.db", erasure_ledger_file=f"{tmp}/ledger.jsonl", **KEYS
        )
        engine = create_engine(settings.database_url)
        clock = SystemClock()
        try:
            await migrate(engine)
            await seed(engine, products=10, settings=settings)
            vault = Vault.from_settings(settings, engine, clock)
            audit = AuditLog(engine, clock, load_audit_key(settings))
            requests = build_requests(settings, engine, vault, clock, audit)
            [(key, subject)] = await _customers(engine, vault, clock, 1, "heavy")
            await _long_history(engine, vault, clock, audit, key, subject, orders)

            started = time.perf_counter()
            request = await requests.open("EXPORT", customer_key=key, subject_id=subject, requested_by="bench")
            request = await requests.run(request.id)
            document = await requests.export_document(request)
            export_s = time.perf_counter() - started
            assert document is not None
            exported = len(document["data"]["orders"])
            print(f"export of a customer with {orders} orders: {export_s:.3f} s ({exported} exported)")

            started = time.perf_counter()
            request = await requests.open("ERASURE", customer_key=key, subject_id=subject, requested_by="bench")
            request = await requests.run(request.id)
            erase_s = time.perf_counter() - started
            verdict = "under" if max(export_s, erase_s) < 2 else "OVER"
            print(f"erasure of that customer: {erase_s:.3f} s ({verdict} the 2 s bar)")

            made_at = time.perf_counter()
            people = await _customers(engine, vault, clock, batch, "batch")
            print(f"made {batch} customers in {time.perf_counter() - made_at:.1f} s")
            for k, s in people:
                await requests.open("ERASURE", customer_key=k, subject_id=s, requested_by="bench")
            started = time.perf_counter()
            pending = await requests.unfinished()
            await requests.run_many(pending)
            batch_s = time.perf_counter() - started
            print(
                f"batch erasure of {len(pending)} customers: {batch_s:.1f} s "
                f"({1000 * batch_s / max(len(pending), 1):.1f} ms each)"
            )
        finally:
            await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10000)
    args = parser.parse_args()
    asyncio.run(main(args.orders, args.batch))
