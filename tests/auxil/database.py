"""The database a test run uses: SQLite or a real PostgreSQL, chosen by ``PORTPAL_TEST_DB``.

`make unit` runs the whole suite twice, once per kind, so every test that keeps state (in
process, in a subprocess, in a killed and restarted bot) runs against both databases. A
test asks for the database of a data directory; on SQLite that is the file the bot would
create there by default, on PostgreSQL a fresh database of its own on the test server.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

KINDS = ("sqlite", "postgresql")
KIND = os.environ.get("PORTPAL_TEST_DB", "sqlite").strip().lower() or "sqlite"
if KIND not in KINDS:
    raise SystemExit(f"PORTPAL_TEST_DB={KIND!r}: expected one of {', '.join(KINDS)}")

# The PostgreSQL server of the session, set by tests/conftest.py when KIND is postgresql.
server_url: str | None = None
_databases: dict[Path, str] = {}
_made: list[tuple[str, str]] = []  # (server, database) pairs to drop
# Variables of the developer's shell that would point a subprocess elsewhere.
FOREIGN = ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "RASA_URL", "PORTPAL_PUBLIC_URL")


def fresh_postgres_database(server: str) -> str:
    """A new empty database on the PostgreSQL server ``server``; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _made.append((server, name))
    return server.rsplit("/", 1)[0] + "/" + name


def url_for(data_dir: Path) -> str:
    """The database of the bot whose data directory is ``data_dir`` (the same one each call)."""
    if KIND == "sqlite":
        return f"sqlite:///{data_dir / 'portpal.sqlite3'}"
    key = data_dir.resolve()
    if key not in _databases:
        assert server_url is not None, "PORTPAL_TEST_DB=postgresql but no PostgreSQL server was started"
        _databases[key] = fresh_postgres_database(server_url)
    return _databases[key]


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    """A subprocess environment for a bot in ``data_dir``: the developer's own database,
    token and servers removed; on SQLite the bot's default file, else ``DATABASE_URL``."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    env["PORTPAL_DATA_DIR"] = str(data_dir)
    if KIND == "postgresql":
        env["DATABASE_URL"] = url_for(data_dir)
    env.update(extra)
    return env


def drop_all() -> None:
    """Drop the databases this run made (forcing out connections a killed bot left)."""
    _databases.clear()
    if not _made:
        return
    import psycopg

    while _made:
        server, name = _made.pop()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
