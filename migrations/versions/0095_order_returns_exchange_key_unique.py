"""An exchange's key takes one return, of one order.

The key was unique per order only: the cart and key of a finished exchange, sent with another
order, took that order's goods back and then replayed the first exchange's sale (paid already) as
this one's, so the new return's refund was never paid. The key ("cart:key") names one exchange: it
is unique across orders, and a retry that meets another order's return with it is refused.

Revision ID: 0095
Revises: 0094
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0095"
down_revision: str | Sequence[str] | None = "0094"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("uq_order_returns_exchange_key", table_name="order_returns")
    op.create_index("uq_order_returns_exchange_key", "order_returns", ["exchange_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_order_returns_exchange_key", table_name="order_returns")
    op.create_index("uq_order_returns_exchange_key", "order_returns", ["order_id", "exchange_key"], unique=True)
