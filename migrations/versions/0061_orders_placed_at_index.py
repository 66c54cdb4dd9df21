"""An index on orders.placed_at and the units on each order: the sales report reads one date range
of orders, grouped, without joining their lines.

Revision ID: 0061
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0061"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("items_count", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE orders SET items_count = "
        "(SELECT COALESCE(SUM(quantity), 0) FROM order_lines WHERE order_lines.order_id = orders.id)"
    )
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_placed_at", table_name="orders")
    op.drop_column("orders", "items_count")
