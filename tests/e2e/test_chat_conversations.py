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


# Conversations in users' own words typed into ``portpal chat``; the state each process leaves
# in the database is judged against the last turn's expectations.
IN_USERS_WORDS = (
    "card stated up front, bank counter, online shop, web, to the end",
    "code said up front, agent in a sentence, Hengqin bonded import, interface, to the end",
    "SX terse clerk, card, CCB branch, web, to the end",
)


@pytest.mark.parametrize("name", IN_USERS_WORDS)
def test_conversation_in_users_words_in_portpal_chat(name, tmp_path):
    from bot.channels.console import CHANNEL
    from bot.store import Store
    from tests.auxil import database
    from tests.auxil.conversations import TUNING_DIR, expectation_problems

    conv = next(c for c in load_conversations(TUNING_DIR) if c.name == name)
    assert conv.turns[-1].expect.get("finished"), "a conversation walked to the end"
    run_cli(conv, PORTPAL, tmp_path)
    store = Store(database.url_for(tmp_path))
    try:
        state = store.load(CHANNEL, conv.chat_id).state
    finally:
        store.close()
    expect = {k: v for k, v in conv.turns[-1].expect.items() if k != "question"}
    assert not expectation_problems(expect, state, None, {}), expect
