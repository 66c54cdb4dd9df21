"""The customers context's personal data for data-subject requests: the profile and address
book (decrypted for an export), the sign-in credentials; erased by crypto-shredding, with the
sign-in throttles of the person's email (found by its blind index before the shred)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import select

from commerce.customers import errors, service
from commerce.customers.models import Customer
from vault.cipher import ERASED
from vault.requests.sources import DataSubject, Retained, SourceContext

__all__ = ["CustomerSource"]


class CustomerSource:
    name: str = "profile"
    tables: tuple[str, ...] = ("customers", "sign_in_throttles")

    def describe(self) -> tuple[str, ...]:
        return ("profile", "credentials")

    async def export(self, ctx: SourceContext, subject: DataSubject) -> dict[str, Any]:
        profile = (await service.profiles_by_ids(ctx.engine, ctx.vault, [subject.customer_key])).get(
            subject.customer_key
        )
        async with ctx.engine.connect() as conn:
            created = (
                await conn.execute(select(Customer.created_at).where(Customer.id == subject.customer_key))
            ).scalar_one_or_none()
        if profile is None or profile.erased:
            return {"erased": True, "createdAt": created.isoformat() if created else None}
        addresses = () if profile.addresses is ERASED else profile.addresses
        return {
            "erased": False,
            "email": profile.email,
            "firstName": profile.first_name,
            "lastName": profile.last_name,
            "phone": profile.phone,
            "addresses": [
                {("postalCode" if k == "postal_code" else k): v for k, v in asdict(a).items()}
                for a in addresses  # type: ignore[union-attr]
            ],
            "createdAt": created.isoformat() if created else None,
        }

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        with contextlib.suppress(errors.CustomerNotFound):  # nothing left (a replay on an older backup)
            await service.erase(ctx.engine, ctx.vault, subject.customer_key)
        return []

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        await service.erase_many(ctx.engine, ctx.vault, [s.customer_key for s in subjects])
        return {s.subject_id: [] for s in subjects}
