"""Loyalty: accounts (balance >= 0), the append-only ledger, points lots and their draws.

Revision ID: 0025
Revises: 0005
Create Date: 2026-11-30 05:41:46.081499
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loyalty_accounts",
        sa.Column("customer_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=True),
        sa.Column("card_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("created_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_loyalty_accounts_balance_not_negative")),
        sa.PrimaryKeyConstraint("customer_key", name=op.f("pk_loyalty_accounts")),
        sa.UniqueConstraint("subject_id", name=op.f("uq_loyalty_accounts_subject_id")),
    )
    op.create_table(
        "loyalty_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("tier_points", sa.Integer(), nullable=False),
        sa.Column("shortfall", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("order_key", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("created_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('EARN', 'REDEEM', 'REVERSE', 'EXPIRE', 'ADJUST')", name=op.f("ck_loyalty_transactions_known_kind")
        ),
        sa.CheckConstraint("shortfall >= 0", name=op.f("ck_loyalty_transactions_shortfall_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_transactions")),
        sa.UniqueConstraint("ref", name=op.f("uq_loyalty_transactions_ref")),
    )
    with op.batch_alter_table("loyalty_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_transactions_customer_created", ["customer_key", "created_at"], unique=False)
        batch_op.create_index("ix_loyalty_transactions_customer_id", ["customer_key", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_loyalty_transactions_order_key"), ["order_key"], unique=False)

    op.create_table(
        "loyalty_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name=op.f("ck_loyalty_lots_remaining_in_range")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["loyalty_transactions.id"],
            name=op.f("fk_loyalty_lots_transaction_id_loyalty_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_lots")),
    )
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.create_index("ix_loyalty_lots_customer_expires", ["customer_key", "expires_at"], unique=False)
        batch_op.create_index("ix_loyalty_lots_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "loyalty_lot_draws",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["loyalty_lots.id"], name=op.f("fk_loyalty_lot_draws_lot_id_loyalty_lots")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["loyalty_transactions.id"],
            name=op.f("fk_loyalty_lot_draws_transaction_id_loyalty_transactions"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", "lot_id", name=op.f("pk_loyalty_lot_draws")),
    )


def downgrade() -> None:
    op.drop_table("loyalty_lot_draws")
    with op.batch_alter_table("loyalty_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_loyalty_lots_expires_at")
        batch_op.drop_index("ix_loyalty_lots_customer_expires")

    op.drop_table("loyalty_lots")
    with op.batch_alter_table("loyalty_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_loyalty_transactions_order_key"))
        batch_op.drop_index("ix_loyalty_transactions_customer_id")
        batch_op.drop_index("ix_loyalty_transactions_customer_created")

    op.drop_table("loyalty_transactions")
    op.drop_table("loyalty_accounts")
