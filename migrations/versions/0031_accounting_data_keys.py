"""a data key's purpose: personal (shredded on erasure) or accounting (shredded when retention ends)

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-30 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vault_data_keys") as batch:
        batch.add_column(sa.Column("purpose", sa.String(length=16), server_default="personal", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("vault_data_keys") as batch:
        batch.drop_column("purpose")
