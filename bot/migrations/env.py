"""Alembic's environment: always run by ``bot.migrate`` with a connection in hand."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.store  # noqa: F401  (the table models register with SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
