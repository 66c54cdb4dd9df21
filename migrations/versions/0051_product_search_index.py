"""A trigram index for `products(search:)` on PostgreSQL: substring search without a scan.

`search` matches a substring of the lower-cased name and SKUs (`search_text LIKE '%term%'`),
which no B-tree serves; a pg_trgm GIN index does, so the search stays fast on a million
products. SQLite keeps the scan (development and tests; its catalog is small).

Revision ID: 0051
Revises: 0050
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0051"
down_revision: str | Sequence[str] | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_products_search_text_trgm ON products USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_products_search_text_trgm")
