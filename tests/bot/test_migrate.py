"""Migrations on SQLite and PostgreSQL: a new database ends at the head with exactly the
models' schema, and a database made before migrations is adopted with its data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from bot.migrate import current, head
from bot.store import AgentRecord, Store, engine_url, sqlite_file

PORTPAL = Path(sys.executable).with_name("portpal")


def test_a_new_database_is_at_the_head_with_the_models_schema(db_url):
    store = Store(db_url)
    try:
        assert current(store.engine) == head()
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], "a model changed without a migration (alembic revision --autogenerate)"
    finally:
        store.close()


def test_a_database_from_before_migrations_is_adopted_with_its_data(db_url):
    if (path := sqlite_file(db_url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(engine_url(db_url))
    with engine.begin() as conn:  # the agent table as the version before migrations made it
        conn.execute(text(
            "CREATE TABLE agent (id VARCHAR(40) PRIMARY KEY, channel VARCHAR(32) NOT NULL, chat_id VARCHAR(64) NOT NULL,"
            " name VARCHAR(100) NOT NULL, public_key VARCHAR(100) NOT NULL, created_at TIMESTAMP NOT NULL,"
            " revoked_at TIMESTAMP, last_seq INTEGER NOT NULL, last_seen_at TIMESTAMP, status VARCHAR NOT NULL)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO agent VALUES ('ag_old', 'console', 'c', 'pc', 'k', '2026-11-01 00:00:00', NULL, 3, NULL, '{}')"
        ))  # fmt: skip
        conn.execute(text("CREATE TABLE conversation (id INTEGER PRIMARY KEY, channel VARCHAR(32) NOT NULL,"
                          " chat_id VARCHAR(64) NOT NULL, state VARCHAR NOT NULL, version INTEGER NOT NULL,"
                          " created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)"))  # fmt: skip
        conn.execute(text("INSERT INTO conversation VALUES (7, 'console', 'c', '{}', 4, '2026-11-01', '2026-11-01')"))
    engine.dispose()
    store = Store(db_url)
    try:
        assert current(store.engine) == head()
        assert {"message", "outbox", "pairing_code"} <= set(inspect(store.engine).get_table_names())
        with store.session() as s:
            old = s.get(AgentRecord, "ag_old")
            assert old is not None and old.online and old.last_seq == 3
        assert store.load("console", "c").version == 4
    finally:
        store.close()


def test_portpal_db_upgrade_and_current(db_url):
    env = {"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"}
    before = subprocess.run([str(PORTPAL), "db", "current"], capture_output=True, text=True, env=env, timeout=60)
    assert before.returncode == 1 and before.stdout.startswith("revision none;")
    if (path := sqlite_file(db_url)) is not None:
        assert "no database at" in before.stdout and not path.exists(), "asking does not create the file"
    done = subprocess.run([str(PORTPAL), "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"database at revision {head()} (head {head()}; was unmigrated)"
    after = subprocess.run([str(PORTPAL), "db", "current"], capture_output=True, text=True, env=env, timeout=60)
    assert after.returncode == 0 and after.stdout.strip() == f"revision {head()}; this version's head: {head()}"
