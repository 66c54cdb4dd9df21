"""A cart's discount codes as a JSON array instead of a comma-joined string.

A code can then hold any character the promotion table allows, and readers need no parsing rule.

Revision ID: 0060
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0060"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_carts = sa.table("carts", sa.column("id", sa.String), sa.column("discount_codes", sa.Text))
_new = sa.table("carts", sa.column("id", sa.String), sa.column("discount_code_list", sa.JSON))


def upgrade() -> None:
    op.add_column("carts", sa.Column("discount_code_list", sa.JSON(), nullable=False, server_default="[]"))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_carts.c.id, _carts.c.discount_codes).where(_carts.c.discount_codes != "")).all()
    for cart_id, joined in rows:
        codes = [code for code in joined.split(",") if code]
        conn.execute(sa.update(_new).where(_new.c.id == cart_id).values(discount_code_list=codes))
    op.drop_column("carts", "discount_codes")
    op.execute("ALTER TABLE carts RENAME COLUMN discount_code_list TO discount_codes")


def downgrade() -> None:
    op.add_column("carts", sa.Column("discount_code_text", sa.Text(), nullable=False, server_default=""))
    conn = op.get_bind()
    old = sa.table("carts", sa.column("id", sa.String), sa.column("discount_codes", sa.JSON))
    text_codes = sa.table("carts", sa.column("id", sa.String), sa.column("discount_code_text", sa.Text))
    for cart_id, codes in conn.execute(sa.select(old.c.id, old.c.discount_codes)).all():
        if codes:
            conn.execute(
                sa.update(text_codes).where(text_codes.c.id == cart_id).values(discount_code_text=",".join(codes))
            )
    op.drop_column("carts", "discount_codes")
    op.execute("ALTER TABLE carts RENAME COLUMN discount_code_text TO discount_codes")
