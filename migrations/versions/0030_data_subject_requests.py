"""data-subject requests; the audit log's person column follows the naming convention

`audit_log.subject` becomes `customer_key`: every column pointing at a person is named
`customer_key` or `subject_id`, so a test can check each is covered by a data-subject source.
Renamed in place (ALTER TABLE ... RENAME COLUMN) so that the append-only triggers stay.

Revision ID: 0030
Revises: 0060
Create Date: 2026-11-30 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vault_subject_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("received_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("rejection_reason", sa.String(length=200), nullable=True),
        sa.Column("steps_done", sa.JSON(), nullable=False),
        sa.Column("retained", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_subject_requests")),
    )
    op.create_index("ix_vault_subject_requests_customer_key", "vault_subject_requests", ["customer_key"], unique=False)
    op.create_index("ix_vault_subject_requests_subject_id", "vault_subject_requests", ["subject_id"], unique=False)
    op.create_index(
        "ix_vault_subject_requests_status_due", "vault_subject_requests", ["status", "due_at"], unique=False
    )
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
    op.execute("ALTER TABLE audit_log RENAME COLUMN subject TO customer_key")
    op.create_index("ix_audit_log_customer_key", "audit_log", ["customer_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_customer_key", table_name="audit_log")
    op.execute("ALTER TABLE audit_log RENAME COLUMN customer_key TO subject")
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"], unique=False)
    op.drop_table("vault_subject_requests")
