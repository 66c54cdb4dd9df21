"""Announce catalog writes to every replica: PostgreSQL triggers NOTIFY the broadcast channel.

Any statement that writes products, variants, categories, prices or stock levels, whoever sends
it (the gateway, an import job, psql), sends `catalog` on `omnigate_events`, the channel
core/broadcast.py listens on; each replica then empties its response cache (gateway/caching.py).
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

TABLES = ("products", "product_variants", "categories", "prices", "stock_levels")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION omnigate_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('omnigate_events', 'catalog' || chr(10) || TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION omnigate_catalog_changed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS omnigate_catalog_changed()")
