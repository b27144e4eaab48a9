"""Alembic environment of the case store: run on the connection the store hands over."""

from __future__ import annotations

from alembic import context

from credit_risk.cases.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
