"""Vault tables: data subjects, their wrapped data keys, blind indexes and the consent ledger.

No table here holds personal data in the clear: keys are wrapped by a KEK, look-ups are
keyed HMACs, and consent rows name a subject only by its opaque id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

SUBJECT_ID_LENGTH = 32


class Subject(Base):
    """A data subject (a person). `erased_at` is set when its key was shredded."""

    __tablename__ = "vault_subjects"

    id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


PERSONAL = "personal"
ACCOUNTING = "accounting"


class DataKey(Base):
    """A subject's data key, wrapped by KEK `kek_version`; deleting the row shreds the subject's data.

    `purpose` "personal" keys seal the person's data and are shredded on erasure; an
    "accounting" key seals only what accounting law makes us keep (invoice details) and is
    shredded by the retention job when that period ends.
    """

    __tablename__ = "vault_data_keys"

    subject_id: Mapped[str] = mapped_column(ForeignKey("vault_subjects.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), default=PERSONAL, server_default=PERSONAL)
    kek_version: Mapped[int] = mapped_column(Integer, index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Lookup(Base):
    """A blind index: HMAC of a normalised value (email, phone) -> subject. Unique per kind where it must be."""

    __tablename__ = "vault_lookups"
    __table_args__ = (
        Index(
            "uq_vault_lookups_unique_digest",
            "kind",
            "digest",
            unique=True,
            sqlite_where=text("is_unique"),
            postgresql_where=text("is_unique"),
        ),
        Index("ix_vault_lookups_kind_digest", "kind", "digest"),
    )

    subject_id: Mapped[str] = mapped_column(ForeignKey("vault_subjects.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    is_unique: Mapped[bool] = mapped_column(Boolean)


class ConsentRecord(Base):
    """One consent decision; append-only. The current state is the latest row per purpose."""

    __tablename__ = "vault_consents"
    __table_args__ = (Index("ix_vault_consents_subject_purpose", "subject_id", "purpose", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(SUBJECT_ID_LENGTH))  # kept after erasure, as proof
    purpose: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    channel: Mapped[str] = mapped_column(String(32))
    policy_version: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(100))  # how it was given, e.g. "self-service via api"
