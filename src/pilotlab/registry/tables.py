"""SQLAlchemy Core tables of the registry.

The tables mirror the Alembic migrations in ``migrations/versions``; a test checks that the two
agree. Timestamps are ISO 8601 UTC text (``2026-11-25T10:00:00.000000Z``) so that they sort, hash
and round-trip identically on SQLite and PostgreSQL. Canonical JSON (the exact bytes that are
hashed) is stored as text, never re-serialised by the database.

``plan_versions``, ``runs``, ``status_changes``, ``imported_records``, ``allocations`` and
``cycle_links`` are append-only: database
triggers created by the migration reject UPDATE and DELETE. Each of their rows carries
``row_sha256``, a hash of its other columns, so that ``Registry.verify`` detects rows edited
outside pilotlab even when the triggers have been removed. ``pilots`` is the one mutable table
(status, registration details, and the counters ``latest_version``, ``run_count``,
``last_run_at`` maintained with each amendment and run).

``registry_log`` (append-only too) chains all of it: every write appends entries whose hash covers
the previous entry's hash, the row hashes of the rows it inserted and a hash of the pilot's whole
``pilots`` row after the write (see ``chain.py``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "APPEND_ONLY_TABLES",
    "SERVICE_TABLES",
    "allocations",
    "api_tokens",
    "audit_log",
    "cycle_links",
    "imported_access",
    "imported_records",
    "imported_shares",
    "metadata",
    "organisations",
    "people",
    "pilot_access",
    "pilot_shares",
    "pilots",
    "plan_versions",
    "registry_info",
    "registry_log",
    "run_files",
    "runs",
    "sessions",
    "status_changes",
]

metadata = sa.MetaData()

Timestamp = sa.String(32)
Sha256 = sa.String(64)

registry_info = sa.Table(
    "registry_info",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

pilots = sa.Table(
    "pilots",
    metadata,
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
    sa.Column("registered_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # Kept in step with plan_versions and runs inside the same transactions, so that listing
    # 10,000 pilots is one table scan; verify() checks them against the history.
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False),
    sa.Column("last_run_at", Timestamp),
)

plan_versions = sa.Table(
    "plan_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("plan_json", sa.Text, nullable=False),
    sa.Column("plan_sha256", Sha256, nullable=False),
    sa.Column("registered_at", Timestamp, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("data_seen", sa.Boolean, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.UniqueConstraint("pilot_id", "version", name="uq_plan_versions_pilot_version"),
    sa.CheckConstraint("version >= 1", name="ck_plan_versions_version_positive"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, unique=True),
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("plan_sha256", Sha256, nullable=False),
    sa.Column("plan_version", sa.Integer),
    sa.Column("matches_latest", sa.Boolean, nullable=False),
    sa.Column("data_sha256", Sha256),
    sa.Column("software_json", sa.Text, nullable=False),
    sa.Column("evidence_json", sa.Text, nullable=False),
    sa.Column("evidence_sha256", Sha256, nullable=False),
    sa.Column("started_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.ForeignKeyConstraint(
        ["pilot_id", "plan_version"],
        ["plan_versions.pilot_id", "plan_versions.version"],
        name="fk_runs_plan_version",
    ),
    sa.Index("ix_runs_pilot_id", "pilot_id", "recorded_at"),
)

status_changes = sa.Table(
    "status_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("old_status", sa.String(20)),
    sa.Column("new_status", sa.String(20), nullable=False),
    sa.Column("changed_at", Timestamp, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.Index("ix_status_changes_pilot_id", "pilot_id"),
)

imported_records = sa.Table(
    "imported_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pilot_id", sa.String(100), nullable=False),
    sa.Column("source_registry_id", sa.String(64), nullable=False),
    sa.Column("source_name", sa.Text, nullable=False),
    sa.Column("source_url", sa.Text),
    sa.Column("source_run_id", sa.String(64)),
    sa.Column("source_recorded_at", Timestamp),
    sa.Column("evidence_json", sa.Text, nullable=False),
    sa.Column("evidence_sha256", Sha256, nullable=False),
    sa.Column("imported_at", Timestamp, nullable=False),
    sa.Column("imported_from", sa.Text, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.UniqueConstraint(
        "source_registry_id", "evidence_sha256", name="uq_imported_records_source_evidence"
    ),
    sa.Index("ix_imported_records_pilot_id", "pilot_id"),
)

registry_log = sa.Table(
    "registry_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entry_json", sa.Text, nullable=False),
    sa.Column("entry_sha256", Sha256, nullable=False),
    sa.Column("key_id", sa.String(16)),
    sa.Column("signature", Sha256),
)

# A randomised pilot's allocation, recorded before the pilot starts; version 2, 3... are later
# changes (each with its reason), listed in the report as deviations.
allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("scheme", sa.String(20), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("n_units", sa.Integer, nullable=False),
    sa.Column("allocation_json", sa.Text, nullable=False),
    sa.Column("allocation_sha256", Sha256, nullable=False),
    sa.Column("plan_sha256", Sha256, nullable=False),
    sa.Column("data_sha256", Sha256),
    sa.Column("reason", sa.Text),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.UniqueConstraint("pilot_id", "version", name="uq_allocations_pilot_version"),
    sa.CheckConstraint("version >= 1", name="ck_allocations_version_positive"),
)

# The learning-cycle chain: which earlier pilot each pilot follows and what changed. A new link
# is appended when a registration or amendment sets or changes the pilot file's ``cycle``.
cycle_links = sa.Table(
    "cycle_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("follows", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.Column("row_sha256", Sha256, nullable=False),
    sa.Index("ix_cycle_links_pilot_id", "pilot_id"),
    sa.Index("ix_cycle_links_follows", "follows"),
)

APPEND_ONLY_TABLES: tuple[str, ...] = (
    "plan_versions",
    "runs",
    "status_changes",
    "imported_records",
    "registry_log",
    "allocations",
    "cycle_links",
)


# ---------------------------------------------------------------------- the evidence service
# Who may see and change what (``pilotlab serve``): organisations, people, API tokens, sign-in
# sessions, each pilot's owner and visibility, the files uploaded with a run, and the audit log
# of every write made through the service. Passwords and API tokens are stored as argon2 hashes;
# a session row keeps only the SHA-256 of the random session secret held in the cookie.

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id")),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("role IN ('reader', 'editor', 'administrator')", name="ck_people_role"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_id", sa.String(24), nullable=False, unique=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp),
    sa.Column("revoked_at", Timestamp),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("secret_sha256", Sha256, nullable=False, unique=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

pilot_access = sa.Table(
    "pilot_access",
    metadata,
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), primary_key=True),
    sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.CheckConstraint(
        "visibility IN ('organisation', 'shared', 'public')", name="ck_pilot_access_visibility"
    ),
    sa.Index("ix_pilot_access_organisation", "organisation_id"),
)

pilot_shares = sa.Table(
    "pilot_shares",
    metadata,
    sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), primary_key=True),
    sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), primary_key=True),
)

imported_access = sa.Table(
    "imported_access",
    metadata,
    sa.Column(
        "imported_record_id", sa.Integer, sa.ForeignKey("imported_records.id"), primary_key=True
    ),
    sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False, server_default="organisation"),
)

#: Organisations an imported record with visibility ``shared`` is shared with (migration 0005).
imported_shares = sa.Table(
    "imported_shares",
    metadata,
    sa.Column(
        "imported_record_id", sa.Integer, sa.ForeignKey("imported_records.id"), primary_key=True
    ),
    sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), primary_key=True),
)

run_files = sa.Table(
    "run_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("media_type", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", Sha256, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("run_id", "name", name="uq_run_files_run_name"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("person_id", sa.Integer),
    sa.Column("person_email", sa.Text),
    sa.Column("token_id", sa.String(24)),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("detail_json", sa.Text, nullable=False),
    sa.Column("registry_seq", sa.Integer),
)

#: The service's tables (migration 0003); ``audit_log`` and ``run_files`` are append-only.
SERVICE_TABLES: tuple[str, ...] = (
    "organisations",
    "people",
    "api_tokens",
    "sessions",
    "pilot_access",
    "pilot_shares",
    "imported_access",
    "imported_shares",
    "run_files",
    "audit_log",
)
