"""Co-purchase statistics for recommendations (built from consenting customers' orders only).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 05:55:16.979157
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "copurchase_pairs",
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("other_product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", "other_product_id", name=op.f("pk_copurchase_pairs")),
    )
    op.create_table(
        "copurchase_rebuilds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("built_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("pairs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_copurchase_rebuilds")),
    )


def downgrade() -> None:
    op.drop_table("copurchase_rebuilds")
    op.drop_table("copurchase_pairs")
