"""Join the branches built side by side (orders' discount codes as JSON, the SQLite search index,
payment calls) into one head, so the next revision has one parent.

Revision ID: 0080
Revises: 0071, 0072, 0075
"""

from collections.abc import Sequence

revision: str = "0080"
down_revision: str | Sequence[str] | None = ("0071", "0072", "0075")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
