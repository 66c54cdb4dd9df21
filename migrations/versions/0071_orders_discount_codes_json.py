"""An order's discount codes as a JSON array instead of a comma-joined string, as the cart's (0060).

The codes are copied from the cart at checkout: one representation on both sides, and readers need no
parsing rule.

Revision ID: 0071
Revises: 0070
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0071"
down_revision: str | Sequence[str] | None = "0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_orders = sa.table("orders", sa.column("id", sa.Integer), sa.column("discount_codes", sa.Text))
_new = sa.table("orders", sa.column("id", sa.Integer), sa.column("discount_code_list", sa.JSON))


def upgrade() -> None:
    op.add_column("orders", sa.Column("discount_code_list", sa.JSON(), nullable=False, server_default="[]"))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_orders.c.id, _orders.c.discount_codes).where(_orders.c.discount_codes != "")).all()
    for order_id, joined in rows:
        codes = [code for code in joined.split(",") if code]
        conn.execute(sa.update(_new).where(_new.c.id == order_id).values(discount_code_list=codes))
    op.drop_column("orders", "discount_codes")
    op.execute("ALTER TABLE orders RENAME COLUMN discount_code_list TO discount_codes")


def downgrade() -> None:
    op.add_column("orders", sa.Column("discount_code_text", sa.Text(), nullable=False, server_default=""))
    conn = op.get_bind()
    old = sa.table("orders", sa.column("id", sa.Integer), sa.column("discount_codes", sa.JSON))
    text_codes = sa.table("orders", sa.column("id", sa.Integer), sa.column("discount_code_text", sa.Text))
    for order_id, codes in conn.execute(sa.select(old.c.id, old.c.discount_codes)).all():
        if codes:
            conn.execute(
                sa.update(text_codes).where(text_codes.c.id == order_id).values(discount_code_text=",".join(codes))
            )
    op.drop_column("orders", "discount_codes")
    op.execute("ALTER TABLE orders RENAME COLUMN discount_code_text TO discount_codes")
