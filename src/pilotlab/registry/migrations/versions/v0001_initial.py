"""Initial registry schema: pilots, append-only plan versions, runs, status changes, imports.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("plan_versions", "runs", "status_changes", "imported_records")

_MESSAGE = (
    "is append-only: registered rows are never updated or deleted "
    "(add a new plan version with `pilotlab amend`)"
)


def _timestamp() -> sa.String:
    return sa.String(32)


def _sha() -> sa.String:
    return sa.String(64)


def upgrade() -> None:
    """Create the tables and the triggers that make the history append-only."""
    op.create_table(
        "registry_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(
        sa.table("registry_info", sa.column("key", sa.String), sa.column("value", sa.Text)),
        [{"key": "registry_id", "value": uuid.uuid4().hex}],
    )
    op.create_table(
        "pilots",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("lead", sa.Text),
        sa.Column("partners", sa.JSON, nullable=False),
        sa.Column("contact", sa.Text),
        sa.Column("policy_area", sa.Text),
        sa.Column("design_type", sa.Text, nullable=False),
        sa.Column("theory_of_change", sa.Text),
        sa.Column("questions", sa.JSON, nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("start_date", sa.String(32)),
        sa.Column("end_date", sa.String(32)),
        sa.Column("actual_start_date", sa.String(32)),
        sa.Column("actual_end_date", sa.String(32)),
        sa.Column("report_due", sa.String(32)),
        sa.Column("publication", sa.Text),
        sa.Column("registered_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("run_count", sa.Integer, nullable=False),
        sa.Column("last_run_at", _timestamp()),
    )
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("plan_json", sa.Text, nullable=False),
        sa.Column("plan_sha256", _sha(), nullable=False),
        sa.Column("registered_at", _timestamp(), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("data_seen", sa.Boolean, nullable=False),
        sa.Column("row_sha256", _sha(), nullable=False),
        sa.UniqueConstraint("pilot_id", "version", name="uq_plan_versions_pilot_version"),
        sa.CheckConstraint("version >= 1", name="ck_plan_versions_version_positive"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False, unique=True),
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("plan_sha256", _sha(), nullable=False),
        sa.Column("plan_version", sa.Integer),
        sa.Column("matches_latest", sa.Boolean, nullable=False),
        sa.Column("data_sha256", _sha()),
        sa.Column("software_json", sa.Text, nullable=False),
        sa.Column("evidence_json", sa.Text, nullable=False),
        sa.Column("evidence_sha256", _sha(), nullable=False),
        sa.Column("started_at", _timestamp()),
        sa.Column("finished_at", _timestamp()),
        sa.Column("recorded_at", _timestamp(), nullable=False),
        sa.Column("row_sha256", _sha(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pilot_id", "plan_version"],
            ["plan_versions.pilot_id", "plan_versions.version"],
            name="fk_runs_plan_version",
        ),
    )
    op.create_index("ix_runs_pilot_id", "runs", ["pilot_id", "recorded_at"])
    op.create_table(
        "status_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("old_status", sa.String(20)),
        sa.Column("new_status", sa.String(20), nullable=False),
        sa.Column("changed_at", _timestamp(), nullable=False),
        sa.Column("row_sha256", _sha(), nullable=False),
    )
    op.create_index("ix_status_changes_pilot_id", "status_changes", ["pilot_id"])
    op.create_table(
        "imported_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.String(100), nullable=False),
        sa.Column("source_registry_id", sa.String(64), nullable=False),
        sa.Column("source_name", sa.Text, nullable=False),
        sa.Column("source_url", sa.Text),
        sa.Column("source_run_id", sa.String(64)),
        sa.Column("source_recorded_at", _timestamp()),
        sa.Column("evidence_json", sa.Text, nullable=False),
        sa.Column("evidence_sha256", _sha(), nullable=False),
        sa.Column("imported_at", _timestamp(), nullable=False),
        sa.Column("imported_from", sa.Text, nullable=False),
        sa.Column("row_sha256", _sha(), nullable=False),
        sa.UniqueConstraint(
            "source_registry_id", "evidence_sha256", name="uq_imported_records_source_evidence"
        ),
    )
    op.create_index("ix_imported_records_pilot_id", "imported_records", ["pilot_id"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {_MESSAGE}'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION pilotlab_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '% {_MESSAGE}', TG_TABLE_NAME "
            "USING ERRCODE = 'restrict_violation'; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pilotlab_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pilotlab_append_only()"
            )
    else:  # pragma: no cover - Registry refuses other databases before migrating
        raise RuntimeError(f"pilotlab's registry supports SQLite and PostgreSQL, not {dialect}")


def downgrade() -> None:
    """Registered history is never dropped by a migration."""
    raise RuntimeError("the registry's initial schema cannot be downgraded: its history is kept")
