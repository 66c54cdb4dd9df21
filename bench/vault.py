"""The vault's cost: per-field encryption and decryption, and 100 customers through GraphQL.

    .venv/bin/python bench/vault.py [--reps 40]

Two SQLite databases, in one process, with 100 customers each (email, names, phone, one
address): one written by an encrypting vault, one with `vault_encryption` off (plaintext:
the baseline only this benchmark may use). The query is the staff list query
`customers(ids: [100 ids]) { email firstName lastName phone addresses {...} }`: one request
for 100 customers (`customer(id:)` aliases would be capped by max_aliases = 30), so the
figure includes everything a client pays: parsing, auth, the loaders' two batched queries
(rows, then data keys), decryption and serialisation. The variants are interleaved, request
by request, after a warm-up; medians are printed with their ratio (the bar is <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from commerce.customers import service as customers
from commerce.customers.passwords import hash_password
from core.clock import SystemClock
from core.db import create_engine, writer
from core.ids import to_global_id
from core.migrate import migrate
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import build_runtime
from gateway.seed import seed
from policies.principal import Principal, Role
from vault.cipher import field_context, open_sealed, seal
from vault.service import Sealed, Vault

CUSTOMERS = 100
KEYS: dict[str, Any] = {
    "kek": "1:" + base64.b64encode(b"omnigate-bench-kek-only-32bytes!").decode(),
    "blind_index_key": base64.b64encode(b"omnigate-bench-blind-index-32byt").decode(),
}
QUERY = """query($ids: [ID!]!) { customers(ids: $ids) {
  id email firstName lastName phone addresses { name line1 line2 postalCode city country } } }"""


async def _prepare(workdir: Path, encryption: bool) -> tuple[Settings, list[str]]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{workdir / ('enc' if encryption else 'plain')}.db",
        vault_encryption=encryption,
        jwt_secret="bench-secret-0123456789-0123456789-0123",
        **KEYS,
    )
    engine = create_engine(settings.database_url)
    clock = SystemClock()
    try:
        await migrate(engine)
        await seed(engine, products=10, settings=settings)
        vault = Vault.from_settings(settings, engine, clock)
        password_hash = await hash_password("bench password")
        ids = []
        async with writer(engine).begin() as conn:
            for n in range(CUSTOMERS):
                reg = customers.Registration(
                    email=f"customer{n}@example.com",
                    password="unused",
                    first_name=f"Firstname{n}",
                    last_name=f"Lastname{n}",
                    phone=f"+48 600 {n:03d} {n:03d}",
                )
                address = customers.Address(
                    name=f"Firstname{n} Lastname{n}",
                    line1=f"ul. Długa {n}",
                    postal_code=f"00-{n:03d}",
                    city="Warszawa",
                    country="PL",
                )
                ids.append(
                    to_global_id(
                        "Customer", await customers.insert_customer(conn, vault, clock, reg, password_hash, [address])
                    )
                )
    finally:
        await engine.dispose()
    return settings, ids


def _per_field_crypto(rounds: int = 20_000) -> tuple[float, float]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    context = field_context("customers", "email", "0" * 32)
    started = time.perf_counter()
    blobs = [seal(aead, 1, context, "customer42@example.com") for _ in range(rounds)]
    encrypt = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for blob in blobs:
        open_sealed(aead, context, blob)
    return encrypt, (time.perf_counter() - started) / rounds


async def _decrypt_many_per_field(settings: Settings) -> float:
    """Amortised over 100 customers x 5 fields, including the one data-key query and the unwraps."""
    from sqlalchemy import select

    from commerce.customers.models import Customer

    engine = create_engine(settings.database_url)
    try:
        vault = Vault.from_settings(settings, engine, SystemClock())
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        Customer.subject_id,
                        Customer.email_sealed,
                        Customer.first_name_sealed,
                        Customer.last_name_sealed,
                        Customer.phone_sealed,
                        Customer.addresses_sealed,
                    )
                )
            ).all()
        columns = ("email", "first_name", "last_name", "phone", "addresses")
        items = [Sealed(r[0], "customers", c, b) for r in rows for c, b in zip(columns, r[1:], strict=True)]
        await vault.decrypt_many(items)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            await vault.decrypt_many(items)
            times.append((time.perf_counter() - started) / len(items))
        return statistics.median(times)
    finally:
        await engine.dispose()


async def run(reps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        variants = {}
        for name, encryption in (("encrypted", True), ("plaintext", False)):
            settings, ids = await _prepare(Path(tmp), encryption)
            runtime = build_runtime(settings)
            token = runtime.tokens.issue(Principal(Role.DPO, subject="bench"), timedelta(hours=1)).token
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, runtime=runtime)),
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            )
            variants[name] = (runtime, client, ids, settings)

        encrypt, decrypt = _per_field_crypto()
        amortised = await _decrypt_many_per_field(variants["encrypted"][3])
        print(f"per field: encrypt {encrypt * 1e6:.1f} us, decrypt {decrypt * 1e6:.1f} us (AES-256-GCM, 22-byte value)")
        print(
            "per field in decrypt_many (100 customers x 5 fields, incl. key query and unwraps): "
            f"{amortised * 1e6:.1f} us"
        )

        async def once(name: str) -> float:
            _, client, ids, _ = variants[name]
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": QUERY, "variables": {"ids": ids}})
            elapsed = time.perf_counter() - started
            body = response.json()
            assert response.status_code == 200 and not body.get("errors"), body
            assert (
                len(body["data"]["customers"]) == CUSTOMERS
                and body["data"]["customers"][7]["firstName"] == "Firstname7"
            )
            return elapsed

        for _ in range(5):  # warm-up: caches, connections, JIT-free but lazy imports
            for name in variants:
                await once(name)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for rep in range(reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for name in order:
                samples[name].append(await once(name))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name, median in medians.items():
            print(
                f"100 customers with all PII via GraphQL, {name}: median {median * 1000:.2f} ms over {reps} requests "
                f"(min {min(samples[name]) * 1000:.2f}, max {max(samples[name]) * 1000:.2f})"
            )
        ratio = medians["encrypted"] / medians["plaintext"]
        print(f"ratio encrypted / plaintext: {ratio:.3f} (bar: <= 1.3) -> {'OK' if ratio <= 1.3 else 'OVER'}")
        for runtime, client, _, _ in variants.values():
            await client.aclose()
            await runtime.aclose()
        return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()
    ratio = asyncio.run(run(args.reps))
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
