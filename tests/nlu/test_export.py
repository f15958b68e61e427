"""The Rasa export: committed, current, held-out data kept out, well-formed."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from rapidfuzz import fuzz

from knowledge.index import domain_words
from knowledge.loader import KnowledgeBase
from knowledge.text import normalize
from nlu.export import PROJECT_DIR, PROJECT_FILES, build_project, default_project, project_hash, write_project
from nlu.gazetteer import default_gazetteer
from nlu.lexical import load_intents
from tests.auxil.corpus import held_out_texts

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\(([a-z_]+)\)|(\{[^}]+\}))")


@pytest.fixture(scope="module")
def project():
    return default_project()


def test_committed_export_is_current(project):
    """Fails when the knowledge base or NLU data changed and `portpal nlu export` was not run."""
    for rel in PROJECT_FILES:
        committed = (PROJECT_DIR / rel).read_text(encoding="utf-8")
        assert committed == project.files[rel], f"nlu/rasa/{rel} is stale: run `portpal nlu export`"


def test_a_changed_knowledge_base_changes_the_export_and_its_hash(project, kb, tmp_path):
    first = kb.entries[0]
    changed = first.model_copy(update={"questions": (*first.questions, "入网到底分几步走")})
    kb2 = KnowledgeBase(
        entries=(changed, *kb.entries[1:]), manuals=kb.manuals, regions=kb.regions, policy_notes=kb.policy_notes
    )
    other = build_project(kb2, load_intents(), default_gazetteer(), domain_words(kb2))
    assert other.files["data/nlu.yml"] != project.files["data/nlu.yml"]
    write_project(project, tmp_path / "a")
    write_project(other, tmp_path / "b")
    assert project_hash(tmp_path / "a") != project_hash(tmp_path / "b")
    assert project_hash(tmp_path / "a") == project_hash(PROJECT_DIR)


def test_export_is_deterministic(project):
    assert default_project().files == project.files


def test_every_knowledge_entry_is_a_retrieval_intent_with_examples(project, kb):
    counts: dict[str, int] = {}
    for ex in project.examples:
        counts[ex.intent] = counts.get(ex.intent, 0) + 1
    for entry in kb.entries:
        assert counts.get(f"faq/{entry.id}", 0) >= 5, entry.id
    for intent in (
        "start_walkthrough",
        "continue",
        "back",
        "skip",
        "where_am_i",
        "fill_form",
        "human",
        "card_status",
        "pair_agent",
        "greet",
        "thanks",
        "bye",
        "affirm",
        "deny",
        "out_of_scope",
    ):
        assert counts.get(intent, 0) >= 8, intent


def test_domain_lists_intents_entities_and_a_response_per_entry(project, kb):
    domain = yaml.safe_load(project.files["domain.yml"])
    assert "faq" in domain["intents"] and "out_of_scope" in domain["intents"]
    assert set(domain["entities"]) >= {
        "region",
        "city",
        "district",
        "card_type",
        "channel",
        "document",
        "open_mode",
        "business_mode",
        "company_role",
    }
    assert {f"utter_faq/{e.id}" for e in kb.entries} == set(domain["responses"])


def test_config_has_the_chinese_pipeline(project):
    config = yaml.safe_load(project.files["config.yml"])
    names = [c["name"] for c in config["pipeline"]]
    assert names[0] == "JiebaTokenizer" and config["pipeline"][0]["dictionary_path"] == "dictionary"
    for name in (
        "RegexFeaturizer",
        "LexicalSyntacticFeaturizer",
        "DIETClassifier",
        "EntitySynonymMapper",
        "ResponseSelector",
        "FallbackClassifier",
    ):
        assert name in names
    analyzers = [c.get("analyzer", "word") for c in config["pipeline"] if c["name"] == "CountVectorsFeaturizer"]
    assert analyzers == ["word", "char_wb"]


def test_annotations_use_known_entities_and_values(project):
    gaz = default_gazetteer()
    nlu = yaml.safe_load(project.files["data/nlu.yml"])["nlu"]
    seen = set()
    for block in nlu:
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            for word, entity, spec in _ANNOTATION.findall(line):
                if spec:
                    parsed = json.loads(spec)
                    entity, value = parsed["entity"], parsed["value"]
                else:
                    value = word
                assert value in gaz.entities[entity], line
                seen.add(entity)
    assert {"region", "city", "district", "card_type", "channel", "company_role", "open_mode"} <= seen
    lookups = {b["lookup"] for b in nlu if "lookup" in b}
    assert lookups == set(gaz.entities)
    assert any(b.get("synonym") == "shaanxi" for b in nlu)


def test_held_out_questions_are_not_training_examples(project):
    """Accuracy is measured on questions Rasa never saw, nor a near copy of (90% similar):
    none of the held-out questions is a training example or a knowledge-base sample question
    (those are training examples too)."""
    squash = lambda t: re.sub(r"[\W_]+", "", normalize(t))  # noqa: E731
    train = {squash(e.text) for e in project.examples}
    near = []
    for q in held_out_texts():
        s = squash(q)
        assert s not in train, q
        best = max(train, key=lambda t: fuzz.ratio(s, t))
        if fuzz.ratio(s, best) >= 90:
            near.append((q, best))
    assert not near, near
