"""A sign-in throttle keeps an index of the email in a column of its own.

The row's key hashes the email's blind index with the client's address, so nothing could find a
person's rows by their email: after an erasure they stayed until the next attempt on that email
or a day without one. With the index beside the key, the erasure deletes them while the person's
blind index still exists. The index is derived from the blind index under the vault's key, not the
blind index itself, which would join to the vault's look-ups and let the client be guessed from
the key. It is kept for every email typed, with an account or not, so the rows
tell no more than before which emails have accounts. Rows written before this revision have no
index; they are forgotten within a day (THROTTLE_MEMORY), or gain it at the next attempt.

Revision ID: 0093
Revises: 0092
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0093"
down_revision: str | Sequence[str] | None = "0092"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sign_in_throttles", sa.Column("email_index", sa.LargeBinary(length=32), nullable=True))
    op.create_index(op.f("ix_sign_in_throttles_email_index"), "sign_in_throttles", ["email_index"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_throttles_email_index"), table_name="sign_in_throttles")
    with op.batch_alter_table("sign_in_throttles") as batch:
        batch.drop_column("email_index")
