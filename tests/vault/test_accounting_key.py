"""A subject's accounting-only key outlives the erasure of their personal data, until the
retention job shreds it: what accounting law keeps stays readable exactly that long."""

from __future__ import annotations

from core.db import writer
from vault.cipher import ERASED
from vault.errors import UnknownSubject
from vault.service import Sealed


async def test_the_accounting_key_survives_erasure_and_dies_with_its_retention(runtime) -> None:
    vault = runtime.services.vault
    async with writer(runtime.services.engine).begin() as conn:
        personal = await vault.create_subject(conn)
        accounting = await vault.open_accounting(conn, personal.subject)
        again = await vault.open_accounting(conn, personal.subject)
        assert accounting.version == again.version != personal.version
        assert (await vault.open_subject(conn, personal.subject)).version == personal.version
    name = vault.encrypt(personal, "customers", "first_name", "Ada")
    invoice = vault.encrypt(accounting, "orders", "invoice", "ACME sp. z o.o., NIP 5250001009")
    sealed = [
        Sealed(personal.subject, "customers", "first_name", name),
        Sealed(personal.subject, "orders", "invoice", invoice),
    ]
    async with writer(runtime.services.engine).begin() as conn:
        await vault.shred(conn, personal.subject)
    assert await vault.decrypt_many(sealed) == [ERASED, "ACME sp. z o.o., NIP 5250001009"]
    async with writer(runtime.services.engine).begin() as conn:
        try:
            await vault.open_accounting(conn, personal.subject)
            raise AssertionError("an erased person gets no new accounting key")
        except UnknownSubject:
            pass
    async with writer(runtime.services.engine).begin() as conn:
        assert await vault.shred_accounting(conn, [personal.subject]) == 1
    assert await vault.decrypt_many(sealed) == [ERASED, ERASED]
