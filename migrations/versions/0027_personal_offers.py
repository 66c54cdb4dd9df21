"""Personal offers: a promotion may target loyalty tiers and/or buyers of categories in a period.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30 05:57:24.773562
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_tiers", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("target_category_ids", sa.JSON(), server_default="[]", nullable=False))
        batch_op.add_column(sa.Column("target_bought_from", core.db.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("target_bought_until", core.db.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("promotions", schema=None) as batch_op:
        batch_op.drop_column("target_bought_until")
        batch_op.drop_column("target_bought_from")
        batch_op.drop_column("target_category_ids")
        batch_op.drop_column("target_tiers")
