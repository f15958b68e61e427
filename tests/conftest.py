"""Shared fixtures: the packaged knowledge base, the manuals, a fresh database."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# python-telegram-bot 22: durations as timedelta now rather than after a deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from bot.config import Settings
from bot.core.dialogue import Dialogue
from bot.core.messages import default_messages
from bot.store import Store
from knowledge.index import Retriever, default_retriever
from knowledge.loader import KnowledgeBase, load_default
from nlu.lexical import LexicalInterpreter, default_lexical
from tests.auxil import database
from tests.auxil.pcsc import Pcscd, pcsc_missing

ROOT = Path(__file__).resolve().parent.parent
MANUALS_DIR = Path(os.environ.get("PORTPAL_MANUALS_DIR", ROOT.parent / "shared" / "manuals"))


@pytest.fixture(scope="session")
def manuals_dir() -> Path:
    # The manuals are the source of truth and CI has them beside the clone: fail, never skip.
    assert MANUALS_DIR.is_dir(), f"manuals not found at {MANUALS_DIR}; set PORTPAL_MANUALS_DIR"
    return MANUALS_DIR


@pytest.fixture(scope="session")
def manual_texts(manuals_dir: Path) -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(manuals_dir.glob("*.txt"))]


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_default()


@pytest.fixture(scope="session")
def retriever() -> Retriever:
    return default_retriever()


@pytest.fixture(scope="session")
def lexical() -> LexicalInterpreter:
    return default_lexical()


@pytest.fixture(scope="session")
def dialogue(retriever: Retriever) -> Dialogue:
    return Dialogue(retriever, default_messages())


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store(db_url)
    yield opened
    opened.close()


# ---------------------------------------------------------------------- PostgreSQL (real server)
PG_SCRIPT = ROOT / "scripts" / "test-postgres"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server: `.ci/run`'s (PORTPAL_TEST_POSTGRES_URL), else one of our own.

    Fails, never skips, when PostgreSQL is not installed: CI must run these tests.
    """
    url = os.environ.get("PORTPAL_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    base = Path(tempfile.mkdtemp(prefix="portpal-pg-"))
    started = subprocess.run([sys.executable, str(PG_SCRIPT), "start", str(base)], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: {started.stderr or started.stdout}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([sys.executable, str(PG_SCRIPT), "stop", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def test_database_server(request: pytest.FixtureRequest) -> None:
    """With PORTPAL_TEST_DB=postgresql every test's database is on the real server."""
    if database.KIND == "postgresql":
        database.server_url = request.getfixturevalue("postgres_server")


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    database.drop_all()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh database of this run's kind (PORTPAL_TEST_DB: SQLite, or real PostgreSQL)."""
    return database.url_for(tmp_path / "data")


# ---------------------------------------------------------------------- Rasa (real server)
def _rasa_bin_or_fail() -> Path:
    from nlu.training import find_rasa_bin

    rasa = find_rasa_bin(Settings().portpal_rasa_venv)
    # CI runs the real Rasa server: a missing installation is a failure, never a skip.
    assert rasa is not None, "Rasa is not installed: `make rasa` builds .venv-rasa (Python 3.10)"
    return rasa


@pytest.fixture(scope="session")
def rasa_bin() -> Path:
    return _rasa_bin_or_fail()


@pytest.fixture(scope="session")
def rasa_model_dir() -> Path:
    return Settings().rasa_model_dir


@pytest.fixture(scope="session")
def rasa_model(rasa_bin: Path, rasa_model_dir: Path) -> Path:
    """The model of the committed export; trained here if `make model` has not done it."""
    from nlu.training import train

    return train(rasa_model_dir, rasa_bin, out=None).model


@pytest.fixture(scope="session")
def rasa_url(rasa_bin: Path, rasa_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Rasa server (``rasa run --enable-api``) on loopback for the whole session.

    Started with plain ``subprocess`` because a session fixture outlives every test's event
    loop; the bot's own ``RasaServer`` (asyncio) is tested in tests/nlu/test_server.py.
    """
    from nlu.server import RasaServer

    server = RasaServer(rasa_bin, rasa_model)
    log = (tmp_path_factory.mktemp("rasa") / "server.log").open("wb")
    proc = subprocess.Popen(server.command(), stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until_ready(server.url, proc)
        yield server.url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the Rasa server exited with status {proc.returncode}"
            try:
                if client.get(f"{url}/status").json().get("model_file"):
                    client.post(f"{url}/model/parse", json={"text": "你好"}).raise_for_status()
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
    raise AssertionError(f"the Rasa server at {url} was not ready within {timeout:.0f} s")


@pytest.fixture(scope="session")
def pcscd() -> Iterator[Pcscd]:
    """The session's pcscd with the virtual readers (it has a fixed socket: one per machine).
    Fails, never skips, without pcscd and vpcd: CI must run these tests."""
    if reason := pcsc_missing():
        pytest.fail(reason)
    daemon = Pcscd()
    daemon.start()
    yield daemon
    daemon.close()


@pytest.fixture
def running_pcscd(pcscd: Pcscd) -> Pcscd:
    """The session's pcscd, running (a test before may have stopped it)."""
    pcscd.start()
    return pcscd
