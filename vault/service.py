"""The vault's API: the only code that holds keys. Everything else passes subject ids and blobs.

    key = await vault.create_subject(conn)           # a new person, with a data key of its own
    blob = vault.encrypt(key, "customers", "email", "ada@example.com")
    values = await vault.decrypt_many([Sealed(subject, "customers", "email", blob), ...])
    await vault.shred(conn, subject)                 # crypto-shredding: every copy is unreadable

`decrypt_many` reads the data keys of a whole batch in one query; a shredded subject's
values come back as `ERASED`, a value rather than an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import and_, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.clock import Clock
from core.db import writer
from core.settings import Settings
from policies.privacy import PrivacyPolicy, privacy_policy
from vault import consent as ledger
from vault.blind import blind_index
from vault.cipher import (
    ERASED,
    DecryptionFailed,
    Erased,
    field_context,
    is_plain,
    key_version_of,
    open_plain,
    open_sealed,
    seal,
    seal_plain,
)
from vault.errors import DuplicateLookup, UnknownSubject
from vault.keys import KeyConfigError, KeyProvider, UnwrapError, load_blind_index_key, load_key_ring
from vault.models import ACCOUNTING, PERSONAL, DataKey, Lookup, Subject

__all__ = ["ERASED", "Erased", "RotationReport", "Sealed", "SubjectKey", "Vault"]

DATA_KEY_BYTES = 32
ROTATION_BATCH = 500


@dataclass(frozen=True, slots=True)
class Sealed:
    """A stored value and where it belongs: the subject, table and column it is bound to."""

    subject: str
    table: str
    column: str
    blob: bytes | None


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """An open data key, held only for one unit of work (never stored, never logged)."""

    subject: str
    version: int
    aead: AESGCM = field(repr=False)


@dataclass(frozen=True, slots=True)
class RotationReport:
    active_version: int
    rewrapped: int
    already_current: int
    in_use: dict[int, int]  # KEK version -> data keys still wrapped by it


def _key_context(subject: str, version: int) -> bytes:
    return f"omnigate/data-key|{subject}|{version}".encode()


class Vault:
    def __init__(
        self,
        engine: AsyncEngine,
        keys: KeyProvider,
        blind_index_key: bytes,
        clock: Clock,
        *,
        encryption: bool = True,
        policy: PrivacyPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self._blind_key = blind_index_key
        self.clock = clock
        self.encryption = encryption
        self.policy = policy or privacy_policy()

    @classmethod
    def from_settings(cls, settings: Settings, engine: AsyncEngine, clock: Clock) -> Vault:
        if not settings.vault_encryption and settings.is_production:
            raise KeyConfigError("vault_encryption cannot be switched off in production")
        return cls(
            engine, load_key_ring(settings), load_blind_index_key(settings), clock, encryption=settings.vault_encryption
        )

    # ---------------------------------------------------------------- subjects and data keys
    async def create_subject(self, conn: AsyncConnection) -> SubjectKey:
        """A new data subject with a fresh data key, inside the caller's unit of work."""
        subject = secrets.token_hex(16)
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        kek_version, wrapped = self.keys.wrap(data_key, _key_context(subject, 1))
        now = self.clock.now()
        await conn.execute(insert(Subject).values(id=subject, created_at=now))
        await conn.execute(
            insert(DataKey).values(
                subject_id=subject,
                version=1,
                purpose=PERSONAL,
                kek_version=kek_version,
                wrapped=wrapped,
                created_at=now,
            )
        )
        return SubjectKey(subject, 1, AESGCM(data_key))

    async def open_subject(self, conn: AsyncConnection, subject: str) -> SubjectKey:
        """The subject's current data key, to encrypt new values; a shredded subject has none."""
        return await self._open(conn, subject, PERSONAL)

    async def _open(self, conn: AsyncConnection, subject: str, purpose: str) -> SubjectKey:
        stmt = (
            select(DataKey.version, DataKey.kek_version, DataKey.wrapped)
            .where(DataKey.subject_id == subject, DataKey.purpose == purpose)
            .order_by(DataKey.version.desc())
            .limit(1)
        )
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise UnknownSubject()
        version, kek_version, wrapped = row
        return SubjectKey(
            subject, version, AESGCM(self.keys.unwrap(kek_version, wrapped, _key_context(subject, version)))
        )

    async def open_accounting(self, conn: AsyncConnection, subject: str) -> SubjectKey:
        """The subject's accounting-only data key, made on first use: it seals what accounting law
        makes us keep (invoice details), survives the person's erasure and is shredded when the
        retention period ends (`shred_accounting`). An erased or unknown subject raises `UnknownSubject`."""
        erased = (await conn.execute(select(Subject.erased_at).where(Subject.id == subject).with_for_update())).first()
        if erased is None or erased[0] is not None:
            raise UnknownSubject()
        try:
            return await self._open(conn, subject, ACCOUNTING)
        except UnknownSubject:
            pass
        latest = (
            await conn.execute(select(func.max(DataKey.version)).where(DataKey.subject_id == subject))
        ).scalar_one()
        version = (latest or 0) + 1
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        kek_version, wrapped = self.keys.wrap(data_key, _key_context(subject, version))
        await conn.execute(
            insert(DataKey).values(
                subject_id=subject,
                version=version,
                purpose=ACCOUNTING,
                kek_version=kek_version,
                wrapped=wrapped,
                created_at=self.clock.now(),
            )
        )
        return SubjectKey(subject, version, AESGCM(data_key))

    async def shred_accounting(self, conn: AsyncConnection, subjects: Sequence[str]) -> int:
        """Destroy the subjects' accounting keys (their retention ended): returns how many."""
        if not subjects:
            return 0
        result = await conn.execute(
            delete(DataKey).where(DataKey.subject_id.in_(subjects), DataKey.purpose == ACCOUNTING)
        )
        return int(result.rowcount or 0)

    def encrypt(self, key: SubjectKey, table: str, column: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        if not self.encryption:
            return seal_plain(value)
        return seal(key.aead, key.version, field_context(table, column, key.subject), value)

    async def decrypt_many(
        self,
        items: Sequence[Sealed],
        conn: AsyncConnection | None = None,
    ) -> list[str | Erased | None]:
        """Each item's plaintext, `None` for no value, `ERASED` for a shredded subject.

        One query reads the data keys of the whole batch (on `conn` when given, saving a checkout).
        """
        versions = [None if i.blob is None or is_plain(i.blob) else key_version_of(i.blob) for i in items]
        wanted = {(i.subject, v) for i, v in zip(items, versions, strict=True) if v is not None}
        keys = await self._data_keys(wanted, conn) if wanted else {}
        out: list[str | Erased | None] = []
        for item, version in zip(items, versions, strict=True):
            if item.blob is None:
                out.append(None)
            elif version is None:
                if self.encryption:
                    raise DecryptionFailed("a plaintext value in an encrypted vault")
                out.append(open_plain(item.blob))
            else:
                aead = keys.get((item.subject, version))
                if aead is None:
                    out.append(ERASED)
                else:
                    out.append(open_sealed(aead, field_context(item.table, item.column, item.subject), item.blob))
        return out

    async def _data_keys(
        self,
        wanted: set[tuple[str, int]],
        conn: AsyncConnection | None,
    ) -> dict[tuple[str, int], AESGCM]:
        subjects = {s for s, _ in wanted}
        stmt = select(DataKey.subject_id, DataKey.version, DataKey.kek_version, DataKey.wrapped).where(
            DataKey.subject_id.in_(subjects)
        )
        if conn is not None:
            rows = (await conn.execute(stmt)).all()
        else:
            async with self.engine.connect() as own:
                rows = (await own.execute(stmt)).all()
        found: dict[tuple[str, int], AESGCM] = {}
        for subject, version, kek_version, wrapped in rows:
            if (subject, version) in wanted:
                try:
                    found[(subject, version)] = AESGCM(
                        self.keys.unwrap(kek_version, wrapped, _key_context(subject, version))
                    )
                except UnwrapError:
                    raise DecryptionFailed("a data key does not open: wrong KEK or retired version") from None
        return found

    # ---------------------------------------------------------------- erasure
    async def shred(self, conn: AsyncConnection, subject: str) -> bool:
        """Destroy the subject's personal data keys and blind indexes: every copy of its data becomes
        unreadable (an accounting key, if any, stays until its retention ends)."""
        await conn.execute(delete(DataKey).where(DataKey.subject_id == subject, DataKey.purpose == PERSONAL))
        await conn.execute(delete(Lookup).where(Lookup.subject_id == subject))
        result = await conn.execute(
            update(Subject).where(Subject.id == subject, Subject.erased_at.is_(None)).values(erased_at=self.clock.now())
        )
        return result.rowcount == 1

    async def shred_many(self, conn: AsyncConnection, subjects: Sequence[str]) -> None:
        """`shred` for a batch of subjects, in three statements (a batch erasure)."""
        if not subjects:
            return
        await conn.execute(delete(DataKey).where(DataKey.subject_id.in_(subjects), DataKey.purpose == PERSONAL))
        await conn.execute(delete(Lookup).where(Lookup.subject_id.in_(subjects)))
        await conn.execute(
            update(Subject)
            .where(Subject.id.in_(subjects), Subject.erased_at.is_(None))
            .values(erased_at=self.clock.now())
        )

    # ---------------------------------------------------------------- blind indexes
    def blind_index(self, kind: str, value: str) -> bytes:
        return blind_index(self._blind_key, kind, value)

    def derived_index(self, purpose: str, digest: bytes) -> bytes:
        """A keyed index of a blind index, for another table to find a person's rows by (sign-in
        throttles by email): unlike the blind index it joins to no look-up, and gives a reader of
        that table nothing to test guesses against."""
        return hmac.new(
            self._blind_key, b"omnigate derived index\x00" + purpose.encode() + b"\x00" + digest, hashlib.sha256
        ).digest()

    async def add_lookup(self, conn: AsyncConnection, subject: str, kind: str, value: str, *, unique: bool) -> None:
        """Index `value` for look-ups; a unique kind held by someone else raises `DuplicateLookup`."""
        digest = self.blind_index(kind, value)
        try:
            await conn.execute(insert(Lookup).values(subject_id=subject, kind=kind, digest=digest, is_unique=unique))
        except IntegrityError:  # the unit of work is aborted: the caller reports and rolls back
            raise DuplicateLookup(kind) from None

    async def remove_lookups(self, conn: AsyncConnection, subject: str, kind: str) -> None:
        """Drop the subject's blind indexes of `kind` (rectification re-keys them)."""
        await conn.execute(delete(Lookup).where(Lookup.subject_id == subject, Lookup.kind == kind))

    async def lookup_digests(self, conn: AsyncConnection, subjects: Sequence[str], kind: str) -> list[bytes]:
        """The subjects' blind indexes of `kind`: what other rows keyed by the same value (sign-in
        throttles by email) are found by, read before `shred` destroys them."""
        if not subjects:
            return []
        stmt = select(Lookup.digest).where(Lookup.subject_id.in_(subjects), Lookup.kind == kind)
        return list((await conn.execute(stmt)).scalars())

    async def lookup(self, kind: str, value: str, conn: AsyncConnection | None = None) -> list[str]:
        stmt = select(Lookup.subject_id).where(Lookup.kind == kind, Lookup.digest == self.blind_index(kind, value))
        if conn is not None:
            return list((await conn.execute(stmt)).scalars())
        async with self.engine.connect() as own:
            return list((await own.execute(stmt)).scalars())

    async def lookup_by_email(self, email: str, conn: AsyncConnection | None = None) -> str | None:
        found = await self.lookup("email", email, conn)
        return found[0] if found else None

    async def lookup_by_phone(self, phone: str) -> list[str]:
        return await self.lookup("phone", phone)

    # ---------------------------------------------------------------- KEK rotation
    async def kek_versions_in_use(self) -> dict[int, int]:
        stmt = select(DataKey.kek_version, func.count()).group_by(DataKey.kek_version)
        async with self.engine.connect() as conn:
            return {version: count for version, count in await conn.execute(stmt)}

    async def rotate(self, batch_size: int = ROTATION_BATCH) -> RotationReport:
        """Re-wrap every data key under the active KEK version, in small transactions (no downtime).

        Only the wrapped keys change, never the data. Each update is conditional on the
        version it read, so a concurrent shred or rotation is never undone.
        """
        active = self.keys.active_version
        rewrapped = 0
        after: tuple[str, int] = ("", 0)
        while True:
            stmt = (
                select(DataKey.subject_id, DataKey.version, DataKey.kek_version, DataKey.wrapped)
                .where(DataKey.kek_version != active, tuple_(DataKey.subject_id, DataKey.version) > after)
                .order_by(DataKey.subject_id, DataKey.version)
                .limit(batch_size)
            )
            async with writer(self.engine).begin() as conn:
                rows = (await conn.execute(stmt)).all()
                for subject, version, old, wrapped in rows:
                    context = _key_context(subject, version)
                    new_version, new_wrapped = self.keys.wrap(self.keys.unwrap(old, wrapped, context), context)
                    result = await conn.execute(
                        update(DataKey)
                        .where(
                            and_(DataKey.subject_id == subject, DataKey.version == version, DataKey.kek_version == old)
                        )
                        .values(kek_version=new_version, wrapped=new_wrapped)
                    )
                    rewrapped += result.rowcount
            if len(rows) < batch_size:
                break
            after = (rows[-1][0], rows[-1][1])
        in_use = await self.kek_versions_in_use()
        return RotationReport(active, rewrapped, in_use.get(active, 0) - rewrapped, in_use)

    # ---------------------------------------------------------------- consent
    async def record_consent(
        self,
        conn: AsyncConnection,
        subject: str,
        purpose: str,
        granted: bool,
        *,
        channel: str,
        method: str,
        at: datetime | None = None,
    ) -> None:
        """Append a decision; an erased (or unknown) subject raises `UnknownSubject`. The subject's
        row is locked, so an erasure committing meanwhile cannot be followed by a new decision."""
        erased = (await conn.execute(select(Subject.erased_at).where(Subject.id == subject).with_for_update())).first()
        if erased is None or erased[0] is not None:
            raise UnknownSubject()
        await ledger.record_consent(
            conn,
            self.policy,
            subject=subject,
            purpose=purpose,
            granted=granted,
            at=at or self.clock.now(),
            channel=channel,
            method=method,
        )

    async def current_consents(self, subjects: Sequence[str]) -> dict[str, list[ledger.Consent]]:
        return await ledger.current_consents(self.engine, subjects)

    async def consent_history(self, subjects: Sequence[str]) -> dict[str, list[ledger.Consent]]:
        return await ledger.consent_history(self.engine, subjects)

    async def permitted(self, subjects: Sequence[str], activity: str) -> set[str]:
        """Which of `subjects` currently consent to the purpose `activity` needs (privacy.toml
        `[processing]`): read from the ledger on every call, so a withdrawal counts at once."""
        if not subjects:
            return set()
        purpose = self.policy.consent_for(activity)
        current = await ledger.current_consents(self.engine, subjects)
        return {s for s, consents in current.items() if any(c.purpose == purpose and c.granted for c in consents)}
