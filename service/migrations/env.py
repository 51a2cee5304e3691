"""Alembic environment: migrations run on a connection the service hands over (see service.store.migrate)."""

from __future__ import annotations

from alembic import context

from service.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("uxcx runs its migrations itself, on start: use `uxcx serve` or service.migrate.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
