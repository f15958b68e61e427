"""The conversation tests (tests/data/conversations) typed into ``portpal chat``.

Each segment between restarts is one ``portpal chat`` process with piped stdin, its clock
set by libfaketime, sharing one data directory and database (SQLite or PostgreSQL, as the
run's PORTPAL_TEST_DB says), so progress and reminders must survive real process restarts.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.auxil.conversations import load_conversations, run_cli

pytestmark = pytest.mark.e2e

PORTPAL = Path(sys.executable).with_name("portpal")
CONVERSATIONS = load_conversations()
IDS = [f"{c.file.removesuffix('.yaml')}: {c.name}" for c in CONVERSATIONS]


@pytest.fixture(scope="module", autouse=True)
def _faketime() -> None:
    assert shutil.which("faketime"), "faketime is missing: run scripts/install-system-deps (make test does)"


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=IDS)
def test_conversation_in_portpal_chat(conv, tmp_path):
    run_cli(conv, PORTPAL, tmp_path)
