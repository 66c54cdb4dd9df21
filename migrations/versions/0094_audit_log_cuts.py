"""The access log's retention: signed cuts, and deletion allowed below a cut only.

The retention policy keeps the access log five years, but the append-only trigger refused every
deletion, so it was kept for ever. The retention job now deletes the oldest records under a cut
(`audit_log_cuts`: the last deleted record's sequence number and hash, signed with the audit key)
from which the rest of the chain verifies. The trigger still refuses every change, and every
deletion of a record no cut covers; the cuts themselves are append-only.

Revision ID: 0094
Revises: 0093
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0094"
down_revision: str | Sequence[str] | None = "0093"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE_LOG = "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
_REFUSE_CUTS = "BEGIN SELECT RAISE(ABORT, 'audit_log_cuts is append-only'); END"
_DELETE_BELOW_A_CUT_ONLY = (
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "WHEN NOT EXISTS (SELECT 1 FROM audit_log_cuts WHERE audit_log_cuts.seq >= OLD.seq) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)


def upgrade() -> None:
    op.create_table(
        "audit_log_cuts",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("cut_at", core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log_cuts")),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_upgrade()
    else:
        _postgresql_upgrade()


def _sqlite_upgrade() -> None:
    op.execute("DROP TRIGGER audit_log_no_delete")
    op.execute(_DELETE_BELOW_A_CUT_ONLY)
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_cuts_no_{action.lower()} BEFORE {action} ON audit_log_cuts {_REFUSE_CUTS}"
        )


def _postgresql_upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_log_cuts WHERE seq >= OLD.seq) THEN RETURN OLD; END IF; "
        "RAISE EXCEPTION 'audit_log is append-only'; END $$"
    )
    op.execute(
        "CREATE FUNCTION audit_log_cuts_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log_cuts is append-only'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_log_cuts_append_only BEFORE UPDATE OR DELETE ON audit_log_cuts "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_cuts_append_only()"
    )


def downgrade() -> None:
    # Once the retention job cut the log, the signed cuts are the only proof of where it begins:
    # without them the chain reports its first record missing for ever, and nothing can mend it.
    if op.get_bind().execute(sa.text("SELECT 1 FROM audit_log_cuts LIMIT 1")).first() is not None:
        raise RuntimeError(
            "audit_log_cuts holds the retention job's signed cuts of the access log: downgrading below "
            "0094 would drop them and leave a log that no longer verifies; refused"
        )
    if op.get_bind().dialect.name == "sqlite":
        for name in ("audit_log_cuts_no_update", "audit_log_cuts_no_delete", "audit_log_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log {_REFUSE_LOG}")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_cuts_append_only ON audit_log_cuts")
        op.execute("DROP FUNCTION IF EXISTS audit_log_cuts_append_only()")
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
    op.drop_table("audit_log_cuts")
