"""Randomised pilots and learning cycles: append-only allocations and cycle links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NEW_TABLES = ("allocations", "cycle_links")

_MESSAGE = (
    "is append-only: registered rows are never updated or deleted "
    "(record a changed allocation with `pilotlab randomise --reason`)"
)


def upgrade() -> None:
    """Create ``allocations`` and ``cycle_links`` and make them append-only."""
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("scheme", sa.String(20), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("n_units", sa.Integer, nullable=False),
        sa.Column("allocation_json", sa.Text, nullable=False),
        sa.Column("allocation_sha256", sa.String(64), nullable=False),
        sa.Column("plan_sha256", sa.String(64), nullable=False),
        sa.Column("data_sha256", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("row_sha256", sa.String(64), nullable=False),
        sa.UniqueConstraint("pilot_id", "version", name="uq_allocations_pilot_version"),
        sa.CheckConstraint("version >= 1", name="ck_allocations_version_positive"),
    )
    op.create_table(
        "cycle_links",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pilot_id", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("follows", sa.String(100), sa.ForeignKey("pilots.id"), nullable=False),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("plan_version", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("row_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_cycle_links_pilot_id", "cycle_links", ["pilot_id"])
    op.create_index("ix_cycle_links_follows", "cycle_links", ["follows"])
    if op.get_bind().dialect.name == "sqlite":
        for table in NEW_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} {_MESSAGE}'); END"
                )
    else:  # postgresql: pilotlab_append_only() was created by 0001
        for table in NEW_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pilotlab_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pilotlab_append_only()"
            )


def downgrade() -> None:
    """Recorded allocations are registered history: never dropped by a migration."""
    raise RuntimeError("allocations and cycle links cannot be downgraded: their history is kept")
