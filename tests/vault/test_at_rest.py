"""What a database leak would show: no personal data in any table, and ciphertexts tied to their place."""

from __future__ import annotations

import pytest
from sqlalchemy import column, inspect, select, table, update

from commerce.customers.models import Customer
from commerce.customers.service import profiles_by_ids
from core.ids import from_global_id
from tests.customers.helpers import register, sign_in
from tests.privacy.helpers import found_in
from vault.cipher import DecryptionFailed

PEOPLE = [
    ("zofia.kowalska@example.com", "Zofia", "Kowalska", "+48 601 234 567"),
    ("jan.nowak@example.org", "Janusz", "Nowakowski", "0048 602 345 678"),
]
ADDRESS = {
    "name": "Zofia Kowalska",
    "line1": "ul. Marszałkowska 140",
    "line2": "lokal 12",
    "postalCode": "00-061",
    "city": "Szczebrzeszyn",
    "country": "PL",
}


async def _all_values(engine) -> list[tuple[str, str, object]]:
    """(table, column, value) for every value of every column of every table."""
    async with engine.connect() as conn:
        tables = await conn.run_sync(
            lambda sync: {
                name: [c["name"] for c in inspect(sync).get_columns(name)] for name in inspect(sync).get_table_names()
            }
        )
        found = []
        for name, columns in tables.items():
            rows = await conn.execute(select(*[column(c) for c in columns]).select_from(table(name)))
            for row in rows:
                found += [(name, c, v) for c, v in zip(columns, row, strict=True)]
    return found


def _needles() -> list[str]:
    needles = []
    for email, first, last, phone in PEOPLE:
        needles += [email, email.split("@")[0], first, last, "".join(ch for ch in phone if ch.isdigit())[-9:]]
    return [*needles, ADDRESS["line1"], "Marszałkowska", ADDRESS["city"], ADDRESS["postalCode"], "demo@example.com"]


async def test_no_email_name_phone_or_address_is_stored_in_plaintext_anywhere(gql, engine):
    for email, first, last, phone in PEOPLE:
        await register(gql, email, first=first, last=last, phone=phone)
    headers = await sign_in(gql, PEOPLE[0][0])
    add = "mutation($a: AddressInput!) { customerAddressAdd(input: $a) { userErrors { code } } }"
    assert (await gql.data(add, {"a": ADDRESS}, headers=headers))["customerAddressAdd"]["userErrors"] == []
    assert (await gql.data("{ me { addresses { city } } }", headers=headers))["me"]["addresses"][0][
        "city"
    ] == "Szczebrzeszyn"

    values = await _all_values(engine)
    assert {t for t, _, _ in values} >= {"customers", "vault_data_keys", "vault_lookups", "vault_subjects"}
    leaks = []
    for table_name, column_name, value in values:
        if isinstance(value, (bytes, bytearray, memoryview)):
            text = bytes(value).decode("utf-8", "replace")
        elif isinstance(value, str):
            text = value
        else:
            continue
        leaks += [(table_name, column_name, n) for n in found_in(text, _needles())]
    assert leaks == []


async def test_a_ciphertext_copied_to_another_customers_row_does_not_decrypt(gql, engine, runtime):
    a = int(from_global_id((await register(gql, "first@example.com", first="Alpha"))["id"])[1])
    b = int(from_global_id((await register(gql, "second@example.com", first="Beta"))["id"])[1])
    vault = runtime.services.vault
    assert (await profiles_by_ids(engine, vault, [b]))[b].first_name == "Beta"
    async with engine.begin() as conn:
        stolen = (await conn.execute(select(Customer.first_name_sealed).where(Customer.id == a))).scalar_one()
        await conn.execute(update(Customer).where(Customer.id == b).values(first_name_sealed=stolen))
    with pytest.raises(DecryptionFailed):
        await profiles_by_ids(engine, vault, [b])
    # ...and within one person, a value moved to another column does not open either.
    async with engine.begin() as conn:
        email = (await conn.execute(select(Customer.email_sealed).where(Customer.id == a))).scalar_one()
        await conn.execute(update(Customer).where(Customer.id == a).values(last_name_sealed=email))
    with pytest.raises(DecryptionFailed):
        await profiles_by_ids(engine, vault, [a])


async def test_erasure_leaves_no_password_hash_behind(gql, engine, runtime):
    from commerce.customers.service import erase

    gone = int(from_global_id((await register(gql, "gone@example.com"))["id"])[1])
    kept = int(from_global_id((await register(gql, "kept@example.com"))["id"])[1])
    assert await erase(engine, runtime.services.vault, gone)
    async with engine.connect() as conn:
        hashes = dict(
            (await conn.execute(select(Customer.id, Customer.password_hash).where(Customer.id.in_([gone, kept])))).all()
        )
    assert hashes[kept].startswith("$argon2id$")
    assert hashes[gone] == ""  # a hash of the person's secret is their data too
    await sign_in(gql, "kept@example.com")
