"""The trained model on a real Rasa server, on questions it was not trained on.

Intent accuracy and entity F1 are measured on tests/data/nlu_heldout.yaml and on the
project's own question set (tests/data/questions.yaml); test_export.py checks that none of
these is a training example.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from knowledge.text import normalize

pytestmark = pytest.mark.rasa

DATA = Path(__file__).resolve().parent.parent / "data"
SCORED_ENTITIES = ("region", "city", "card_type")


def _held_out() -> list[dict]:
    examples = yaml.safe_load((DATA / "nlu_heldout.yaml").read_text(encoding="utf-8"))["examples"]
    own = yaml.safe_load((DATA / "questions.yaml").read_text(encoding="utf-8"))["questions"]
    examples += [{"text": q["q"], "intent": "out_of_scope" if q.get("kind") == "fallback" else "faq"} for q in own]
    return examples


@pytest.fixture(scope="module")
def parses(rasa_url):
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        return [
            (ex, client.post(f"{rasa_url}/model/parse", json={"text": normalize(ex["text"])}).json())
            for ex in _held_out()
        ]


def _top_intent(body: dict) -> str:
    name = body["intent"]["name"]
    return "out_of_scope" if name == "nlu_fallback" else name.split("/", 1)[0]


def test_intent_accuracy_on_held_out_questions(parses):
    wrong = [(ex["text"], ex["intent"], _top_intent(body)) for ex, body in parses if _top_intent(body) != ex["intent"]]
    accuracy = 1 - len(wrong) / len(parses)
    print(f"held-out intent accuracy: {accuracy:.1%} of {len(parses)}; wrong: {wrong}")
    assert accuracy >= 0.90, wrong


def test_entity_f1_on_held_out_questions(parses):
    tp = fp = fn = 0
    misses = []
    for ex, body in parses:
        if "entities" not in ex:
            continue
        expected = {(k, str(v)) for k, v in ex["entities"].items() if k in SCORED_ENTITIES}
        found = {(e["entity"], str(e["value"])) for e in body["entities"] if e["entity"] in SCORED_ENTITIES}
        tp += len(expected & found)
        fp += len(found - expected)
        fn += len(expected - found)
        if expected != found:
            misses.append((ex["text"], sorted(expected), sorted(found)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"region/city/card_type entity P {precision:.3f} R {recall:.3f} F1 {f1:.3f} ({tp} TP); misses: {misses}")
    assert tp >= 20
    assert f1 >= 0.90, misses


def test_retrieval_intent_names_an_entry(parses, kb):
    ids = {e.id for e in kb.entries}
    for _ex, body in parses[:20]:
        ranking = body["response_selector"]["faq"]["ranking"]
        assert ranking and all(r["intent_response_key"].split("/", 1)[1] in ids for r in ranking)
