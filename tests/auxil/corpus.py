"""The question corpus written as users type (tests/data/corpus/): loading and judging.

Three parts, written by different people from the manuals alone: ``tuning`` (looked at,
tuned on, its paraphrases may train Rasa), ``fresh`` (a third writer's, measured once
before anything was tuned on it, then tuned on like ``tuning``) and ``heldout`` (never
looked at one by one, never tuned or trained on; only its figures are read). Each question goes through the same
path as ``portpal ask``: an engine's reading, then the dialogue core on a fresh state (with
the remembered region when the question says one).

A question is judged by what the user saw:

- ``right``: answered, and every ``expect`` group has one of its strings in the answer, or
  (an English answer) in the entries it translates (an out-of-scope question: not answered);
- ``suggested``: not answered, but one of the offered "did you mean" entries answers it
  right (one tap from right);
- ``wrong``: answered without a fact it needs, or answered when it should not be;
- ``unanswered``: the fallback.

Numbers in an answer that are in neither manual are counted as invented, whatever the verdict.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.core.dialogue import Dialogue
from bot.core.events import TextMessage
from bot.core.state import ConversationState
from knowledge.loader import KnowledgeBase
from knowledge.render import answer_lines
from knowledge.text import is_english
from nlu.interpreter import Understanding

__all__ = [
    "CORPUS_DIR",
    "PARTS",
    "Item",
    "Report",
    "Verdict",
    "held_out_texts",
    "judge",
    "load",
    "number_parts",
    "run",
]

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
DEV_SET = Path(__file__).resolve().parents[3] / "shared" / "eval" / "dev_questions.json"
PARTS = ("tuning", "fresh", "heldout")
OUT_OF_SCOPE_KINDS = frozenset({"out_of_scope", "fallback"})
_NUMBER = re.compile(r"\d[\d\-]{3,}\d")
# The manuals spell this one out ("密码为8个8").
_ALLOWED_NUMBERS = frozenset({"88888888"})


@dataclass(frozen=True)
class Item:
    id: str
    q: str
    kind: str
    section: str
    expect: tuple[tuple[str, ...], ...]
    remembered: str | None = None

    @property
    def out_of_scope(self) -> bool:
        return self.kind in OUT_OF_SCOPE_KINDS


def load(part: str) -> list[Item]:
    raw = yaml.safe_load((CORPUS_DIR / f"{part}.yaml").read_text(encoding="utf-8"))["questions"]
    return [
        Item(
            id=str(q["id"]),
            q=str(q["q"]),
            kind=str(q["kind"]),
            section=str(q.get("section", "none")),
            expect=tuple(tuple(str(s) for s in group) for group in q.get("expect") or ()),
            remembered=q.get("remembered"),
        )
        for q in raw
    ]


def held_out_texts() -> list[str]:
    """Every question that measures understanding and so must never train it: the corpus's
    held-out part, the project's own question set, the NLU held-out examples and the shared
    development set."""
    own = yaml.safe_load((DATA_DIR / "questions.yaml").read_text(encoding="utf-8"))["questions"]
    nlu = yaml.safe_load((DATA_DIR / "nlu_heldout.yaml").read_text(encoding="utf-8"))["examples"]
    texts = [q["q"] for q in own] + [x["text"] for x in nlu] + [i.q for i in load("heldout")]
    assert DEV_SET.is_file(), f"development set not found at {DEV_SET}"
    texts += [q["q"] for q in json.loads(DEV_SET.read_text(encoding="utf-8"))]
    return texts


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def number_parts(text: str) -> set[str]:
    parts: set[str] = set()
    for token in _NUMBER.findall(squash(text)):
        parts.add(token.replace("-", ""))
        parts.update(p for p in token.split("-") if p)
    return parts


def _has_facts(item: Item, text: str) -> bool:
    flat = squash(text)
    return all(any(squash(s) in flat for s in group) for group in item.expect)


def _entries_text(kb: KnowledgeBase, entry_ids: Iterable[str]) -> str:
    """The entries' answers in both languages."""
    return "\n".join(
        line for e in entry_ids if e in kb.by_id for lang in ("zh", "en") for line in answer_lines(kb.get(e), kb, lang)
    )


@dataclass(frozen=True)
class Verdict:
    item: Item
    verdict: str  # right | suggested | wrong | unanswered
    answer: str
    invented: tuple[str, ...] = ()


def judge(item: Item, dialogue: Dialogue, understanding: Understanding, manual_numbers: set[str]) -> Verdict:
    """What the user saw for one question, judged."""
    state = ConversationState()
    if item.remembered:
        state.region = item.remembered
    outcome = dialogue.handle(state, TextMessage(item.q), understanding)
    text = "\n".join(r.text for r in outcome.replies)
    answer = outcome.answer
    answered = answer is not None and not answer.fallback
    invented = tuple(sorted(number_parts(text) - manual_numbers - _ALLOWED_NUMBERS))
    if item.out_of_scope:
        return Verdict(item, "wrong" if answered else "right", text, invented)
    kb = dialogue.kb
    if answered:
        assert answer is not None
        # An English answer translates its entries; the corpus quotes the (Chinese) manuals.
        translated = is_english(item.q) and _has_facts(item, _entries_text(kb, answer.entry_ids))
        right = _has_facts(item, text) or translated
        return Verdict(item, "right" if right else "wrong", text, invented)
    for entry_id in answer.suggestions if answer is not None else ():
        if _has_facts(item, _entries_text(kb, (entry_id,))):
            return Verdict(item, "suggested", text, invented)
    return Verdict(item, "unanswered", text, invented)


@dataclass
class Report:
    """Verdicts of one engine on one part, counted overall and per kind."""

    verdicts: list[Verdict] = field(default_factory=list)

    def share(self, verdict: str, kind: str | None = None) -> float:
        rows = [v for v in self.verdicts if kind is None or v.item.kind == kind]
        return sum(v.verdict == verdict for v in rows) / len(rows) if rows else 0.0

    @property
    def right(self) -> float:
        return self.share("right")

    @property
    def wrong(self) -> float:
        return self.share("wrong")

    @property
    def invented(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.invented]

    def by_kind(self) -> dict[str, Counter[str]]:
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for v in self.verdicts:
            table[v.item.kind][v.verdict] += 1
        return dict(sorted(table.items()))


def run(
    items: Sequence[Item], dialogue: Dialogue, understandings: Iterable[Understanding], manual_texts: Iterable[str]
) -> Report:
    manual_numbers = set().union(*(number_parts(t) for t in manual_texts))
    report = Report()
    for item, understanding in zip(items, understandings, strict=True):
        report.verdicts.append(judge(item, dialogue, understanding, manual_numbers))
    return report
