"""storefront catalog: media, options, tags, collections, compare-at prices

Revision ID: 0040
Revises: 0005
Create Date: 2026-11-30 05:42:17.742576
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("image_url", sa.String(length=2000), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('manual', 'rule')", name=op.f("ck_collections_known_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("handle", name=op.f("uq_collections_handle")),
    )
    op.create_table(
        "collection_products",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_products_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_collection_products_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("collection_id", "product_id", name=op.f("pk_collection_products")),
    )
    with op.batch_alter_table("collection_products", schema=None) as batch_op:
        batch_op.create_index("ix_collection_products_position", ["collection_id", "position"], unique=False)

    op.create_table(
        "product_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("alt_text", sa.String(length=500), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_media_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_media")),
    )
    with op.batch_alter_table("product_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_media_product_id"), ["product_id"], unique=False)

    op.create_table(
        "product_options",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_options_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_options")),
        sa.UniqueConstraint("product_id", "name", name=op.f("uq_product_options_product_id")),
    )
    with op.batch_alter_table("product_options", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_options_product_id"), ["product_id"], unique=False)

    op.create_table(
        "product_tags",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_tags_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("product_id", "tag", name=op.f("pk_product_tags")),
    )
    with op.batch_alter_table("product_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_product_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "variant_option_values",
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("option_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["option_id"],
            ["product_options.id"],
            name=op.f("fk_variant_option_values_option_id_product_options"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["product_variants.id"],
            name=op.f("fk_variant_option_values_variant_id_product_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("variant_id", "option_id", name=op.f("pk_variant_option_values")),
    )
    with op.batch_alter_table("variant_option_values", schema=None) as batch_op:
        batch_op.create_index("ix_variant_option_values_option_value", ["option_id", "value"], unique=False)

    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compare_at_amount", sa.Numeric(precision=12, scale=2), nullable=True))
        batch_op.create_check_constraint(
            "compare_at_above_amount", "compare_at_amount IS NULL OR compare_at_amount > amount"
        )


def downgrade() -> None:
    with op.batch_alter_table("prices", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_prices_compare_at_above_amount"), type_="check")
        batch_op.drop_column("compare_at_amount")

    with op.batch_alter_table("variant_option_values", schema=None) as batch_op:
        batch_op.drop_index("ix_variant_option_values_option_value")

    op.drop_table("variant_option_values")
    with op.batch_alter_table("product_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_tags_tag"))

    op.drop_table("product_tags")
    with op.batch_alter_table("product_options", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_options_product_id"))

    op.drop_table("product_options")
    with op.batch_alter_table("product_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_media_product_id"))

    op.drop_table("product_media")
    with op.batch_alter_table("collection_products", schema=None) as batch_op:
        batch_op.drop_index("ix_collection_products_position")

    op.drop_table("collection_products")
    op.drop_table("collections")
