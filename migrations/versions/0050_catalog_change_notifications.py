"""Announce catalog and pricing writes to every replica: PostgreSQL triggers NOTIFY the broadcast.

Any statement that writes products, variants, categories, prices, stock levels, promotions or
their usage, whoever sends it (the gateway, an import job, psql), sends its topic (`catalog`,
`stock`, `pricing`) on `omnigate_events`, the channel core/broadcast.py listens on; each
replica then empties its response and pricing caches (gateway/caching.py).
One notification per statement, not per row, and PostgreSQL folds identical notifications of
one transaction into one. SQLite has no NOTIFY: the gateway announces its own writes there.

Revision ID: 0050
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0050"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the broadcast topic its writes are announced on (gateway/caching.py: TOPICS)
TABLES = {
    "products": "catalog",
    "product_variants": "catalog",
    "categories": "catalog",
    "prices": "catalog",
    "stock_levels": "stock",
    "promotions": "pricing",
    "promotion_usages": "pricing",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION omnigate_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('omnigate_events', TG_ARGV[0] || chr(10) || TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table, topic in TABLES.items():
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION omnigate_changed('{topic}')"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS omnigate_changed()")
