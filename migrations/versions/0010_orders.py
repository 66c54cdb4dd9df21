"""orders, order lines, returns, VAT classes, promotion usage counters

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(12, 2)
TAX_CLASSES = [
    {"code": "standard", "rate": "0.2300", "position": 1},
    {"code": "reduced", "rate": "0.0800", "position": 2},
    {"code": "super_reduced", "rate": "0.0500", "position": 3},
    {"code": "zero", "rate": "0.0000", "position": 4},
]


def upgrade() -> None:
    tax_classes = op.create_table(
        "tax_classes",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.CheckConstraint("rate >= 0 AND rate < 1", name=op.f("ck_tax_classes_rate_fraction")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_tax_classes")),
    )
    op.bulk_insert(tax_classes, TAX_CLASSES)
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("tax_class", sa.String(length=16), server_default="standard", nullable=False))

    op.create_table(
        "promotion_usage_counters",
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.CheckConstraint("used >= 0", name=op.f("ck_promotion_usage_counters_used_not_negative")),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_usage_counters_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("promotion_id", "scope", name=op.f("pk_promotion_usage_counters")),
    )

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_key", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("cart_id", sa.String(length=43), nullable=False),
        sa.Column("cart_version", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("channel_code", sa.String(length=32), nullable=False),
        sa.Column("fulfillment_method", sa.String(length=24), nullable=False),
        sa.Column("pickup_location_id", sa.Integer(), nullable=True),
        sa.Column("reserved_until", core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("shipping_address_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("invoice_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("discount_total", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("tax_total", MONEY, nullable=False),
        sa.Column("discount_codes", sa.Text(), nullable=False),
        sa.Column("promotion_ids", sa.JSON(), nullable=False),
        sa.Column("payment_method", sa.String(length=32), nullable=False),
        sa.Column("payment_status", sa.String(length=24), nullable=False),
        sa.Column("payment_reference", sa.String(length=64), nullable=True),
        sa.Column("amount_refunded", MONEY, nullable=False),
        sa.Column("loyalty_points_earned", sa.Integer(), nullable=False),
        sa.Column("loyalty_points_redeemed", sa.Integer(), nullable=False),
        sa.Column("placed_by", sa.String(length=100), nullable=True),
        sa.Column("placed_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "total >= 0 AND subtotal >= 0 AND discount_total >= 0", name=op.f("ck_orders_amounts_not_negative")
        ),
        sa.CheckConstraint(
            "amount_refunded >= 0 AND amount_refunded <= total", name=op.f("ck_orders_refund_within_total")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("owner_key", "idempotency_key", name="uq_orders_owner_idempotency"),
    )
    op.create_index("ix_orders_cart_id", "orders", ["cart_id"])
    op.create_index("ix_orders_customer_placed", "orders", ["customer_key", "id"])
    op.create_index("ix_orders_pickup_status", "orders", ["pickup_location_id", "status"])
    op.create_index("ix_orders_status_reserved_until", "orders", ["status", "reserved_until"])

    op.create_table(
        "order_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("quantity_returned", sa.Integer(), nullable=False),
        sa.Column("unit_price", MONEY, nullable=False),
        sa.Column("subtotal", MONEY, nullable=False),
        sa.Column("discount", MONEY, nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("tax_rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("tax_amount", MONEY, nullable=False),
        sa.Column("amount_refunded", MONEY, nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "quantity_returned >= 0 AND quantity_returned <= quantity",
            name=op.f("ck_order_lines_returned_within_quantity"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    op.create_index("ix_order_lines_order_id", "order_lines", ["order_id"])

    op.create_table(
        "order_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("refund", MONEY, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.Column("created_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_returns_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_returns")),
    )
    op.create_index("ix_order_returns_order_id", "order_returns", ["order_id"])


def downgrade() -> None:
    op.drop_table("order_returns")
    op.drop_table("order_lines")
    op.drop_table("orders")
    op.drop_table("promotion_usage_counters")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("tax_class")
    op.drop_table("tax_classes")
