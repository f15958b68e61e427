"""Bringing a database's tables up to the code's: Alembic, at start-up or on demand.

``Store`` calls ``upgrade`` when it opens a database, so a new version of the bot migrates
the database it finds (``portpal db upgrade`` does the same by hand, ``portpal db current``
shows where a database stands). Several processes starting at once on PostgreSQL take
turns on an advisory lock. A database made before migrations existed (by ``create_all``)
is recognised by its tables and stamped with the first revision, which it matches.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect
from sqlmodel import SQLModel

__all__ = ["BASELINE", "current", "head", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
_LOCK = 0x706F7274  # "port": the advisory lock migrations take on PostgreSQL


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this code knows."""
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> str | None:
    """The revision a database is at (None: no migration ever ran on it)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
        tables = set(inspect(conn).get_table_names())
        if "conversation" in tables and "alembic_version" not in tables:
            _adopt(conn, tables)
        command.upgrade(_config(conn), revision)


def _adopt(conn: Connection, tables: set[str]) -> None:
    """A database from before migrations: bring it to the baseline (what ``create_all``
    at start-up did, and the one column added since), then stamp it."""
    import bot.store  # noqa: F401  (the table models)

    SQLModel.metadata.create_all(conn)
    if "agent" in tables and "online" not in {c["name"] for c in inspect(conn).get_columns("agent")}:
        conn.exec_driver_sql("ALTER TABLE agent ADD COLUMN online BOOLEAN NOT NULL DEFAULT TRUE")
    command.stamp(_config(conn), BASELINE)
    log.info("database from before migrations: stamped at revision %s", BASELINE)
