"""An exchange's return records the exchange's idempotency key and how it was settled.

A retried `orderExchange` took the return a second time (goods restocked twice, refund doubled).
The key, unique per order, lets a retry find the return it took, even when two retries race; the
status (TAKEN, then SOLD or REFUNDED) lets only one attempt pay out, and a retry after a failed
sale (the return refunded in full) be refused. Plain returns keep both NULL.

Revision ID: 0091
Revises: 0090
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0091"
down_revision: str | Sequence[str] | None = "0090"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("order_returns", sa.Column("exchange_key", sa.String(180), nullable=True))
    op.add_column("order_returns", sa.Column("exchange_status", sa.String(16), nullable=True))
    op.create_index("uq_order_returns_exchange_key", "order_returns", ["order_id", "exchange_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_order_returns_exchange_key", table_name="order_returns")
    with op.batch_alter_table("order_returns") as batch:
        batch.drop_column("exchange_status")
        batch.drop_column("exchange_key")
