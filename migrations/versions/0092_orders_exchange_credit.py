"""An exchange's sale records the credit that paid part of it and the order it came from.

Returning an exchange's new goods refunded the whole line to the sale's own card, which had been
charged only the difference; when the credit paid for everything nothing was refunded at all. With
the credit and its order recorded, a return of the sale pays the sale's own charge back first and
the rest to the payment the returned goods were bought with.

Revision ID: 0092
Revises: 0091
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0092"
down_revision: str | Sequence[str] | None = "0091"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("exchange_credit", sa.Numeric(12, 2), nullable=False, server_default="0"))
    op.add_column("orders", sa.Column("credit_order_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("credit_order_id")
        batch.drop_column("exchange_credit")
