"""carts and promotions

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-24 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "carts",
        sa.Column("id", sa.String(length=43), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merged_into", sa.String(length=43), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("discount_codes", sa.Text(), nullable=False),
        sa.Column("created_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_carts_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carts")),
    )
    op.create_index("ix_carts_updated_at", "carts", ["updated_at"], unique=False)
    op.create_index(
        "uq_carts_active_customer",
        "carts",
        ["customer_key"],
        unique=True,
        sqlite_where=sa.text("status = 'active' AND customer_key IS NOT NULL"),
        postgresql_where=sa.text("status = 'active' AND customer_key IS NOT NULL"),
    )
    op.create_table(
        "cart_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cart_id", sa.String(length=43), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_cart_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["cart_id"], ["carts.id"], name=op.f("fk_cart_lines_cart_id_carts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_cart_lines_variant_id_product_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cart_lines")),
        sa.UniqueConstraint("cart_id", "variant_id", name="uq_cart_lines_cart_variant"),
    )
    op.create_index("ix_cart_lines_variant_id", "cart_lines", ["variant_id"], unique=False)
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("min_subtotal", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("starts_at", core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("usage_limit_per_customer", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('percentage', 'fixed_amount')", name=op.f("ck_promotions_known_kind")),
        sa.CheckConstraint("value >= 0", name=op.f("ck_promotions_value_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("code", name=op.f("uq_promotions_code")),
    )
    op.create_table(
        "promotion_usages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=True),
        sa.Column("order_ref", sa.String(length=64), nullable=False),
        sa.Column("used_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_usages_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_usages")),
    )
    op.create_index("ix_promotion_usages_promotion_id", "promotion_usages", ["promotion_id"], unique=False)
    op.create_index("ix_promotion_usages_customer_key", "promotion_usages", ["customer_key"], unique=False)


def downgrade() -> None:
    op.drop_table("promotion_usages")
    op.drop_table("promotions")
    op.drop_table("cart_lines")
    op.drop_index("uq_carts_active_customer", table_name="carts")
    op.drop_index("ix_carts_updated_at", table_name="carts")
    op.drop_table("carts")
