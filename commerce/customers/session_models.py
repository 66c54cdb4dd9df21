"""Sign-in sessions and password resets: what makes a customer's token stop working.

Tokens are stateless JWTs; these tables are the little state that overrides them, read on
every signed-in request so that every replica refuses a signed-out token at once:
  - `customer_accounts.token_generation`: a token carries the generation it was issued in;
    bumping it (password change or reset) signs out every older token of that customer.
  - `revoked_tokens`: one token signed out (customerAccessTokenDelete), kept until it expires.
  - `password_reset_tokens`: a reset link's token, stored only as its SHA-256, single-use.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime


class CustomerAccount(Base):
    __tablename__ = "customer_accounts"

    customer_key: Mapped[int] = mapped_column(Integer, primary_key=True)  # no FK: customers own their table
    token_generation: Mapped[int] = mapped_column(Integer, default=0)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the token's `jti`
    customer_key: Mapped[int] = mapped_column(Integer, index=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # purged after this


class PasswordResetToken(Base):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[int] = mapped_column(Integer, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the emailed token
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
