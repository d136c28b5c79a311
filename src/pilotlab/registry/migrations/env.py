"""Alembic environment: migrations run programmatically by ``Registry`` on the connection it passes.

``Registry`` opens the connection, takes the schema lock (``BEGIN IMMEDIATE`` on SQLite, an
advisory transaction lock on PostgreSQL) and hands the connection over in
``config.attributes["connection"]``; the migrations then run inside that one transaction.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from the alembic command line
    raise RuntimeError(
        "pilotlab's registry migrations run from Python: open the registry with "
        "pilotlab.Registry(url), which applies them"
    )

context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
