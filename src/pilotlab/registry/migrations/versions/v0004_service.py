"""The evidence service: organisations, people, API tokens, sessions, pilot visibility, run
files and the append-only audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_APPEND_ONLY = ("audit_log", "run_files")
_MESSAGE = "is append-only: the record of writes and uploaded files is never changed"


def _ts() -> sa.String:
    return sa.String(32)


def upgrade() -> None:
    """Create the service's tables; the audit log and run files refuse UPDATE and DELETE."""
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id")),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.CheckConstraint("role IN ('reader', 'editor', 'administrator')", name="ck_people_role"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_id", sa.String(24), nullable=False, unique=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts()),
        sa.Column("revoked_at", _ts()),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
    )
    op.create_table(
        "pilot_access",
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), primary_key=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.CheckConstraint(
            "visibility IN ('organisation', 'shared', 'public')",
            name="ck_pilot_access_visibility",
        ),
    )
    op.create_index("ix_pilot_access_organisation", "pilot_access", ["organisation_id"])
    op.create_table(
        "pilot_shares",
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), primary_key=True),
        sa.Column(
            "organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), primary_key=True
        ),
    )
    op.create_table(
        "imported_access",
        sa.Column(
            "imported_record_id",
            sa.Integer,
            sa.ForeignKey("imported_records.id"),
            primary_key=True,
        ),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
    )
    op.create_table(
        "run_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("run_id", "name", name="uq_run_files_run_name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("person_id", sa.Integer),
        sa.Column("person_email", sa.Text),
        sa.Column("token_id", sa.String(24)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.Text),
        sa.Column("detail_json", sa.Text, nullable=False),
        sa.Column("registry_seq", sa.Integer),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table in _APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {_MESSAGE}'); END"
                )
    else:  # postgresql: pilotlab_append_only() was created by 0001
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pilotlab_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pilotlab_append_only()"
            )


def downgrade() -> None:
    """The audit log is history: never dropped by a migration."""
    raise RuntimeError("the service's audit log cannot be downgraded: its history is kept")
