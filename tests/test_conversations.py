"""Conversation tests (tests/data/conversations) through the assistant core.

Every conversation runs on SQLite and on PostgreSQL with the lexical engine, and on SQLite
with the real Rasa server; restarts build a new store and assistant over the same
database, and the reminder pass runs with the conversation's clock.
"""

from __future__ import annotations

import pytest

from tests.auxil import database
from tests.auxil.conversations import HELD_OUT_DIR, TUNING_DIR, Conversation, CoreRunner, load_conversations

CONVERSATIONS = load_conversations()
IDS = [f"{c.file.removesuffix('.yaml')}: {c.name}" for c in CONVERSATIONS]


def test_there_are_conversations_for_every_procedure(kb):
    files = {c.file.removesuffix(".yaml") for c in CONVERSATIONS}
    assert set(kb.procedures) <= files


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=IDS)
async def test_conversation_lexical(conv: Conversation, db_url, lexical, retriever):
    await CoreRunner(db_url, lexical, retriever).run(conv)


# The NLU engine is what differs here, not the database: once, in the SQLite pass (`corpus`).
@pytest.mark.corpus
@pytest.mark.rasa
@pytest.mark.parametrize("conv", CONVERSATIONS, ids=IDS)
async def test_conversation_rasa(conv: Conversation, tmp_path, rasa_url, retriever):
    from nlu.gazetteer import default_gazetteer
    from nlu.lexical import default_lexical
    from nlu.rasa import RasaInterpreter

    commands = default_lexical().overriding_intent
    interpreter = RasaInterpreter(rasa_url, default_gazetteer(), timeout=5.0, commands=commands)
    try:
        await CoreRunner(database.url_for(tmp_path), interpreter, retriever).run(conv)
    finally:
        await interpreter.aclose()


async def test_every_branch_and_milestone_is_covered(kb, tmp_path, lexical, retriever):
    runner = CoreRunner(database.url_for(tmp_path), lexical, retriever)
    for conv in CONVERSATIONS:
        await runner.run(conv)
    wanted = {(r, c.id, o.value) for r, p in kb.procedures.items() for c in p.choices for o in c.options}
    assert wanted - runner.answers == set(), "branches no conversation takes"
    milestones = {(r, m.id) for r, p in kb.procedures.items() for s in p.steps for m in s.milestones}
    assert milestones - runner.milestones == set(), "milestones no conversation reports"


def test_expectations_are_judged_against_the_state():
    from bot.core.state import Company, ConversationState, Progress
    from tests.auxil.conversations import expectation_problems

    state = ConversationState(walkthrough="zhuhai", company=0)
    state.companies.append(Company(name="珠海横琴某某有限公司", progress={"zhuhai": Progress(current="local_filing")}))
    ok = {"walkthrough": "zhuhai", "company": "珠海横琴某某有限公司", "step": "local_filing"}
    assert expectation_problems(ok, state, None, {}) == []
    wrong = {"walkthrough": "shaanxi", "answers": {"agent": "agent"}, "done": ["jc_filing"], "question": True}
    assert len(expectation_problems(wrong, state, None, {})) == 4


# Conversations in users' own words (tuning/ and heldout/): measured turn by turn, not yet all
# passing (issue 21). These floors keep what has been reached; the held-out part is never read
# turn by turn, only counted.
# Measured 2026-12-04 (bench/walkthroughs.py): lexical 91.5% / 83.9%, Rasa 91.2% / 86.5%
# (tuning / held-out); Rasa's floor leaves room for a model trained on another machine.
WALK_FLOORS = {
    ("lexical", "tuning"): 0.89,
    ("lexical", "heldout"): 0.82,
    ("rasa", "tuning"): 0.88,
    ("rasa", "heldout"): 0.83,
}
PARTS = {"tuning": TUNING_DIR, "heldout": HELD_OUT_DIR}


async def _turns_passed(part: str, interpreter, retriever, tmp_path) -> float:
    runner = CoreRunner(database.url_for(tmp_path), interpreter, retriever, strict=False)
    for conv in load_conversations(PARTS[part]):
        await runner.run(conv)
    assert runner.results, f"no conversations in {PARTS[part]}"
    return sum(not problems for _, _, problems in runner.results) / len(runner.results)


@pytest.mark.corpus
@pytest.mark.parametrize("part", list(PARTS))
async def test_walkthroughs_in_users_words_lexical(part, tmp_path, lexical, retriever):
    share = await _turns_passed(part, lexical, retriever, tmp_path)
    assert share >= WALK_FLOORS[("lexical", part)], f"{part}: {share:.1%} of turns passed"


@pytest.mark.corpus
@pytest.mark.rasa
@pytest.mark.parametrize("part", list(PARTS))
async def test_walkthroughs_in_users_words_rasa(part, tmp_path, rasa_url, retriever):
    from nlu.gazetteer import default_gazetteer
    from nlu.lexical import default_lexical
    from nlu.rasa import RasaInterpreter

    interpreter = RasaInterpreter(
        rasa_url, default_gazetteer(), timeout=5.0, commands=default_lexical().overriding_intent
    )
    try:
        share = await _turns_passed(part, interpreter, retriever, tmp_path)
    finally:
        await interpreter.aclose()
    assert share >= WALK_FLOORS[("rasa", part)], f"{part}: {share:.1%} of turns passed"
