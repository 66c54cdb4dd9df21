"""Indexes that serve `products(search:)`: an FTS5 trigram table on SQLite, better estimates on PostgreSQL.

SQLite: `products_fts`, an FTS5 table with the trigram tokenizer over `products.search_text`
(external content: it stores only the index, the text stays in `products`), kept in step by
triggers on insert, delete and a change of the text. A trigram phrase matches any substring of
three characters or more, case-insensitively: what `search_text LIKE '%term%'` matches (and
what PostgreSQL's pg_trgm index serves, migration 0051), without reading every product.
Shorter terms have no trigram: they keep the LIKE scan (see commerce/catalog/listing.py).
The trigram tokenizer needs SQLite 3.34 (2020) or later.

PostgreSQL: a larger statistics sample of `search_text`, so the planner's estimate of how many
products a term matches (which decides between the trigram index and the id order, and which
`totalCount` reports for broad terms) is read from 1,000 sampled values instead of 100.

Revision ID: 0072
Revises: 0070
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0072"
down_revision: str | Sequence[str] | None = "0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_STATISTICS = 1000  # PostgreSQL's default is 100

_SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE products_fts USING fts5("
    "search_text, content='products', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN "
    "INSERT INTO products_fts (rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN "
    "INSERT INTO products_fts (products_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER products_fts_update AFTER UPDATE OF id, search_text ON products BEGIN "
    "INSERT INTO products_fts (products_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO products_fts (rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO products_fts (products_fts) VALUES ('rebuild')",  # the products already there
]
_SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS products_fts_update",
    "DROP TRIGGER IF EXISTS products_fts_delete",
    "DROP TRIGGER IF EXISTS products_fts_insert",
    "DROP TABLE IF EXISTS products_fts",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_UPGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"ALTER TABLE products ALTER COLUMN search_text SET STATISTICS {SEARCH_STATISTICS}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_DOWNGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("ALTER TABLE products ALTER COLUMN search_text SET STATISTICS -1")
