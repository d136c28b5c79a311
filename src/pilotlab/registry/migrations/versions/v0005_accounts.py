"""The evidence service: people made to change a reset password, and imported records with a
visibility of their own (organisation only, shared with named organisations, or public).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``people.must_change_password``, ``imported_access.visibility`` (existing rows keep
    what they had: their organisation only) and ``imported_shares``."""
    op.add_column(
        "people",
        sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "imported_access",
        sa.Column("visibility", sa.String(16), nullable=False, server_default="organisation"),
    )
    op.create_table(
        "imported_shares",
        sa.Column(
            "imported_record_id",
            sa.Integer,
            sa.ForeignKey("imported_records.id"),
            primary_key=True,
        ),
        sa.Column(
            "organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), primary_key=True
        ),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    op.drop_table("imported_shares")
    with op.batch_alter_table("imported_access") as batch:
        batch.drop_column("visibility")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("must_change_password")
