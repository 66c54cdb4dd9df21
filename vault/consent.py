"""The consent ledger: append-only proof of every decision, the current state derived from it.

Each change is a new row with the time (from the Clock), the channel, the privacy-notice
version in force and how the decision was given. Withdrawing is one call, like granting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from policies.privacy import PrivacyPolicy
from vault.errors import UnknownPurpose
from vault.models import ConsentRecord

__all__ = ["Consent", "consent_history", "current_consents", "record_consent"]


@dataclass(frozen=True, slots=True)
class Consent:
    purpose: str
    granted: bool
    recorded_at: datetime
    channel: str
    policy_version: str
    method: str


_COLUMNS = (
    ConsentRecord.subject_id,
    ConsentRecord.purpose,
    ConsentRecord.granted,
    ConsentRecord.recorded_at,
    ConsentRecord.channel,
    ConsentRecord.policy_version,
    ConsentRecord.method,
)


METHOD_LENGTH: int = ConsentRecord.method.type.length


def _fitted(method: str) -> str:
    """`method` within its column on every database (PostgreSQL refuses a longer text, SQLite keeps
    it): a longer one, e.g. naming an identity provider's long subject, keeps its start and ends
    with a digest of the whole, so two such texts stay apart."""
    if len(method) <= METHOD_LENGTH:
        return method
    digest = hashlib.sha256(method.encode()).hexdigest()[:12]
    return f"{method[: METHOD_LENGTH - len(digest) - 2]}…#{digest}"


def _consent(row: Sequence[Any]) -> Consent:
    return Consent(*row[1:])


async def record_consent(
    conn: AsyncConnection,
    policy: PrivacyPolicy,
    *,
    subject: str,
    purpose: str,
    granted: bool,
    at: datetime,
    channel: str,
    method: str,
) -> None:
    if not policy.knows(purpose):
        raise UnknownPurpose(policy.purpose_codes)
    await conn.execute(
        insert(ConsentRecord).values(
            subject_id=subject,
            purpose=purpose,
            granted=granted,
            recorded_at=at,
            channel=channel,
            policy_version=policy.version,
            method=_fitted(method),
        )
    )


async def current_consents(engine: AsyncEngine, subjects: Sequence[str]) -> dict[str, list[Consent]]:
    """Latest decision per purpose for each subject, in purpose order (one query for all)."""
    latest = (
        select(func.max(ConsentRecord.id))
        .where(ConsentRecord.subject_id.in_(subjects))
        .group_by(ConsentRecord.subject_id, ConsentRecord.purpose)
    )
    stmt = (
        select(*_COLUMNS).where(ConsentRecord.id.in_(latest)).order_by(ConsentRecord.subject_id, ConsentRecord.purpose)
    )
    found: dict[str, list[Consent]] = {s: [] for s in subjects}
    async with engine.connect() as conn:
        for row in await conn.execute(stmt):
            found[row[0]].append(_consent(row))
    return found


async def consent_history(engine: AsyncEngine, subjects: Sequence[str]) -> dict[str, list[Consent]]:
    """Every decision, oldest first (ids grow with time: the ledger is append-only)."""
    stmt = select(*_COLUMNS).where(ConsentRecord.subject_id.in_(subjects)).order_by(ConsentRecord.id)
    found: dict[str, list[Consent]] = {s: [] for s in subjects}
    async with engine.connect() as conn:
        for row in await conn.execute(stmt):
            found[row[0]].append(_consent(row))
    return found
