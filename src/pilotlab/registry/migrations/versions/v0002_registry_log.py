"""The hash-chained, append-only registry log; existing rows are adopted into it in order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MESSAGE = (
    "is append-only: registered rows are never updated or deleted "
    "(add a new plan version with `pilotlab amend`)"
)


def upgrade() -> None:
    """Create ``registry_log``, make it append-only and chain the rows already registered."""
    from pilotlab.registry.chain import adopt_existing

    op.create_table(
        "registry_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entry_json", sa.Text, nullable=False),
        sa.Column("entry_sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16)),
        sa.Column("signature", sa.String(64)),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER registry_log_no_{action.lower()} BEFORE {action} ON "
                f"registry_log BEGIN SELECT RAISE(ABORT, 'registry_log {_MESSAGE}'); END"
            )
    else:  # postgresql: the function was created by 0001
        op.execute(
            "CREATE TRIGGER registry_log_append_only BEFORE UPDATE OR DELETE ON registry_log "
            "FOR EACH ROW EXECUTE FUNCTION pilotlab_append_only()"
        )
        op.execute(
            "CREATE TRIGGER registry_log_no_truncate BEFORE TRUNCATE ON registry_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION pilotlab_append_only()"
        )
    registry_id = bind.execute(
        sa.text("SELECT value FROM registry_info WHERE key = 'registry_id'")
    ).scalar_one()
    key = context.config.attributes.get("registry_key")
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    adopt_existing(bind, registry_id, key, at)


def downgrade() -> None:
    """The log is registered history: never dropped by a migration."""
    raise RuntimeError("the registry log cannot be downgraded: its history is kept")
