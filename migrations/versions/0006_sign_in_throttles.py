"""sign-in throttles per (email as typed, client)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 06:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttles",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttles")),
    )
    op.create_index(op.f("ix_sign_in_throttles_updated_at"), "sign_in_throttles", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_throttles_updated_at"), table_name="sign_in_throttles")
    op.drop_table("sign_in_throttles")
