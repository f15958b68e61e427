"""The question corpus written as users type (tests/data/corpus/): its shape, and floors.

The held-out part measures understanding; nothing is tuned or trained on it (the export test
``tests/nlu/test_export.py::test_held_out_questions_are_not_training_examples`` keeps every
held-out question, and anything 90% like it, out of Rasa's training data and the knowledge
base's sample questions). The floors below are what the engines reach today, so that a
change that loses understanding fails; ``bench/understanding.py`` prints the full tables.

These tests need no database: ``make unit`` runs them once, in the SQLite pass (marker
``corpus``), not once per database.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from nlu.gazetteer import default_gazetteer
from nlu.lexical import default_lexical
from nlu.rasa import RasaInterpreter
from tests.auxil import corpus

pytestmark = pytest.mark.corpus

KINDS = {
    "typo",
    "padding",
    "place",
    "multi",
    "next",
    "overview",
    "prerequisite",
    "timing",
    "region",
    "english",
    "document",
    "out_of_scope",
    "plain",
}
# What the held-out part must keep (measured: see the README's table).
LEXICAL_FLOOR = 0.84
RASA_FLOOR = 0.84
WRONG_CEILING = 0.09


@pytest.fixture(scope="module")
def parts():
    return {part: corpus.load(part) for part in corpus.PARTS}


def test_the_corpus_is_large_varied_and_split(parts, kb):
    tuning, fresh, heldout = parts["tuning"], parts["fresh"], parts["heldout"]
    assert len(tuning) + len(fresh) + len(heldout) >= 500 and len(heldout) >= 150
    for items in (tuning, fresh, heldout):
        assert len({i.id for i in items}) == len(items)
        kinds = Counter(i.kind for i in items)
        assert set(kinds) == KINDS, set(kinds) ^ KINDS
        english = sum(i.kind == "english" for i in items) / len(items)
        assert 0.08 <= english <= 0.15
        assert all(not i.expect for i in items if i.out_of_scope)
        assert all(i.expect for i in items if not i.out_of_scope)
        assert {i.section.split()[0] for i in items} == {"sx", "zh", "none"}
    # The parts are by different writers: no question is in two of them.
    for a, b in ((tuning, heldout), (fresh, heldout), (tuning, fresh)):
        assert not {i.q for i in a} & {i.q for i in b}


def test_every_expected_fact_is_in_a_manual(parts, manual_texts):
    flat = [re.sub(r"\s+", "", t) for t in manual_texts]
    for items in parts.values():
        for item in items:
            for group in item.expect:
                assert any(re.sub(r"\s+", "", s) in m for s in group for m in flat), (item.id, group)


def _report(items, dialogue, understandings, manual_texts):
    report = corpus.run(items, dialogue, understandings, manual_texts)
    print(f"right {report.right:.1%} wrong {report.wrong:.1%} invented {len(report.invented)}")
    for kind, counts in report.by_kind().items():
        print(f"  {kind:<14} {dict(counts)}")
    return report


def test_held_out_lexical(parts, lexical, dialogue, manual_texts):
    """The lexical engine alone (what answers while Rasa is down)."""
    items = parts["heldout"]
    report = _report(items, dialogue, [lexical.parse_sync(i.q) for i in items], manual_texts)
    assert not report.invented, [(v.item.id, v.invented) for v in report.invented]
    assert report.right >= LEXICAL_FLOOR
    assert report.wrong <= WRONG_CEILING


@pytest.mark.rasa
async def test_held_out_with_rasa(parts, dialogue, rasa_url, manual_texts):
    """Rasa and the retriever together: the bot's default when Rasa is up."""
    items = parts["heldout"]
    client = RasaInterpreter(rasa_url, default_gazetteer(), timeout=5.0, commands=default_lexical().overriding_intent)
    try:
        understandings = [await client.parse(i.q) for i in items]
    finally:
        await client.aclose()
    assert all(u.engine == "rasa" for u in understandings)
    report = _report(items, dialogue, understandings, manual_texts)
    assert not report.invented, [(v.item.id, v.invented) for v in report.invented]
    assert report.right >= RASA_FLOOR
    assert report.wrong <= WRONG_CEILING


def test_the_tuning_part_is_not_worse_than_the_held_out_part(parts, lexical, dialogue, manual_texts):
    """A sanity check of the split: the part that was tuned on scores at least as well."""
    scores = {}
    for part in ("tuning", "heldout"):
        items = parts[part]
        scores[part] = corpus.run(items, dialogue, [lexical.parse_sync(i.q) for i in items], manual_texts).right
    assert scores["tuning"] >= scores["heldout"] - 0.05
