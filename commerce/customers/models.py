"""The customers table: an opaque vault subject, sealed PII blobs, and sign-in bookkeeping.

Every `*_sealed` column is a vault ciphertext bound to this table, its column and the
subject: nothing in this table reads as personal data without the subject's key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

TABLE = "customers"


class Customer(Base):
    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("vault_subjects.id"), unique=True)
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    first_name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    last_name_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    phone_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    addresses_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # one JSON list
    profile_version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on each PII change
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SignInThrottle(Base):
    """Failed sign-ins per (email as typed, client), whether or not the email has an account.

    `key` is a keyed hash of the email's blind index and the client's address: no email and no
    address is readable here. Keyed by what was typed, not by the account, so an unknown email
    is throttled exactly like a known one (the answers do not tell them apart), and by client,
    so a stranger's failures do not lock the owner out of their own account.

    `email_index` is an index of the email alone (derived under the vault's key from its blind
    index, so it joins to no look-up and exposes nothing the key hashes), kept for every email
    alike, so that erasing a person deletes the rows of their email (the key cannot be searched
    by email).
    """

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    email_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True, index=True)  # NULL: before 0093
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
