"""Join the branches built side by side (sign-in throttles, outbox, loyalty, data-subject
requests, storefront accounts, catalog notifications, the sales report) into one head, so the
next revision has one parent.

Revision ID: 0070
Revises: 0006, 0020, 0027, 0031, 0042, 0051, 0061
"""

from collections.abc import Sequence

revision: str = "0070"
down_revision: str | Sequence[str] | None = ("0006", "0020", "0027", "0031", "0042", "0051", "0061")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
