"""Alembic environment: migrations run on the connection genimg.storage.engine.migrate passes in."""

from alembic import context

from genimg.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
