"""Announce writes to the rest of what cached answers read: channels, locations, tags, options, media.

Migration 0050 announced products, variants, categories, prices and stock. Public answers also
read channels and locations (`channels`, `locations`: 300 s hints), a product's tags, its options
and option values (`variantBySelectedOptions`) and its media. A writer other than the gateway
(an import job, psql) changed those unheard: cached answers kept the old value for their max-age.
Their triggers send `catalog`, as the gateway's own hook does on SQLite (gateway/caching.py: TOPICS).

Revision ID: 0090
Revises: 0080
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0090"
down_revision: str | Sequence[str] | None = "0080"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("channels", "locations", "product_tags", "product_options", "variant_option_values", "product_media")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:  # omnigate_changed() is migration 0050's
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION omnigate_changed('catalog')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
