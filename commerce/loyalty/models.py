"""Loyalty tables: the account (balance), the append-only ledger, points lots and what drew on them.

Invariants the service keeps in every transaction: the account's balance equals the sum of
its ledger's points and the sum of its lots' remaining points, and is never negative (a
CHECK as the backstop). No foreign keys to customers or orders: they live in other contexts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UtcDateTime

__all__ = ["KINDS", "TABLE", "LoyaltyAccountRow", "LoyaltyLot", "LoyaltyLotDraw", "LoyaltyTransactionRow"]

TABLE = "loyalty_accounts"  # the vault binds the sealed card number to this table name
KINDS = ("EARN", "REDEEM", "REVERSE", "EXPIRE", "ADJUST")


class LoyaltyAccountRow(Base):
    """One per customer. `balance` changes only by a conditional update (or under its row lock)."""

    __tablename__ = TABLE
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    customer_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject_id: Mapped[str | None] = mapped_column(String(32), unique=True)  # set with the card: the vault subject
    card_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # the card number, vault ciphertext
    balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoyaltyTransactionRow(Base):
    """One ledger entry; append-only. `ref` makes each caller's step happen once (unique)."""

    __tablename__ = "loyalty_transactions"
    __table_args__ = (
        CheckConstraint("kind IN ('EARN', 'REDEEM', 'REVERSE', 'EXPIRE', 'ADJUST')", name="known_kind"),
        CheckConstraint("shortfall >= 0", name="shortfall_not_negative"),
        Index("ix_loyalty_transactions_customer_id", "customer_key", "id"),
        Index("ix_loyalty_transactions_customer_created", "customer_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    points: Mapped[int] = mapped_column(Integer)  # signed: what the balance moved by
    # what counts towards the tier: + for an earn, - for a return's reversal (shortfall included)
    tier_points: Mapped[int] = mapped_column(Integer, default=0)
    shortfall: Mapped[int] = mapped_column(Integer, default=0)  # a reversal the balance could not cover
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100))  # "system", "checkout", "agent:agent-1", ...
    order_key: Mapped[str | None] = mapped_column(String(64), index=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(128), unique=True)  # "earn:<order>", "redeem:<order>", ...
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LoyaltyLot(Base):
    """Points that arrived together and expire together; spent oldest-expiry first."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
        Index("ix_loyalty_lots_customer_expires", "customer_key", "expires_at"),
        Index("ix_loyalty_lots_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    points: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)


class LoyaltyLotDraw(Base):
    """How many points an entry (a redemption, a reversal) took from a lot: a released hold puts them back."""

    __tablename__ = "loyalty_lot_draws"

    transaction_id: Mapped[int] = mapped_column(ForeignKey("loyalty_transactions.id"), primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("loyalty_lots.id"), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
