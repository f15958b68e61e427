"""Answers built from several entries or from the procedure, not from one entry alone.

- **What next**: "海关注册登记弄完了，然后呢" names a finished thing; the answer is what
  follows it, found in the order the manuals give: a procedure's steps and the actions of each
  step (``actions`` in the procedure data, with the options they depend on), then the arrow
  chains inside entries ("提交申请材料→身份核验→制卡机构制卡→发卡").
- **Overview**: "珠海这边整个流程是怎样的" gets the region's steps, one line each.
- **Two things at once**: "API版和Web版材料一样吗" gets both entries, each cited.

Every line still comes from a knowledge entry or the procedure data, so nothing is stated that
the knowledge base does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from knowledge.index import Hit, Retriever
from knowledge.loader import KnowledgeBase
from knowledge.procedure import Action, Condition, Procedure, Step, Text
from knowledge.render import title
from knowledge.schema import Entry
from knowledge.text import normalize
from nlu.cues import default_cues

__all__ = ["Next", "Overview", "Then", "chains", "find_next", "find_overview", "similarity"]

_ARROW = re.compile(r"\s*(?:→|->|—>)\s*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# How much of a named thing a step title or chain element must share to be taken for it.
_MATCH_MIN = 0.5
# The finished thing must be found with at least this confidence when only the search knows it.
_ENTRY_MIN = 0.3


@lru_cache(maxsize=8192)
def _grams(text: str) -> frozenset[str]:
    """Character bigrams (cached: the procedure's names and words come back every question)."""
    text = re.sub(r"[\s\W_]+", "", normalize(text))
    grams = {text[i : i + 2] for i in range(len(text) - 1)}
    return frozenset(grams or ({text} if text else set()))


@lru_cache(maxsize=8192)
def _normal(text: str) -> str:
    return normalize(text)


def similarity(thing: str, name: str) -> float:
    """How well the user's ``thing`` names ``name``, by shared character bigrams."""
    a, b = _grams(thing), _grams(name)
    if not a or not b:
        return 0.0
    shared = len(a & b)
    # Mostly: how much of what the user said the name holds (names are long: "中国（陕西）
    # 国际贸易“单一窗口”注册" for "单一窗口注册"); a little: how much of the name was said.
    return 0.7 * shared / len(a) + 0.3 * shared / len(b) if shared >= 2 else 0.0


def chains(entry: Entry) -> Iterator[list[str]]:
    """The arrow chains in an entry's answer and bullets, each as its elements."""
    for text in (entry.answer, *entry.bullets):
        if "→" not in text and "->" not in text:
            continue
        body = text.split("：", 1)[-1].rstrip("。.")
        parts = [re.sub(r"^\d+\s*", "", p).strip("“”\"' ") for p in _ARROW.split(body)]
        if len(parts) >= 2 and all(parts):
            yield parts


@dataclass(frozen=True)
class Then:
    """One action that follows, with the options it depends on when the user's are unknown
    ("主管海关为拱跨工区" before the written application)."""

    action: Action
    entry: Entry
    only_if: tuple[Text, ...] = ()


@dataclass(frozen=True)
class Next:
    """What follows a finished thing: the next actions of its step (``actions``), the next
    step of the procedure (``step``), or the next part of an entry's chain (``element``)
    with the entry that tells it."""

    region: str
    entry: Entry
    step: Step | None = None
    step_number: int = 0
    steps_total: int = 0
    element: str = ""
    within: bool = False  # the finished thing is a part of ``entry``, which goes on from it
    actions: tuple[Then, ...] = ()


def _content(thing: str, retriever: Retriever) -> str:
    """``thing`` without its region ("陕西单一窗口注册": the region says nothing about which
    step) and punctuation."""
    for place in retriever.place_words(thing):
        thing = normalize(thing).replace(place + "这边", "").replace(place + "的", "").replace(place, "")
    for r in retriever.kb.regions.values():
        thing = thing.replace(r.name + "省", "").replace(r.name, "")
    return re.sub(r"[\s\W_]+|这边|那边", "", thing)


def _named_step(thing: str, kb: KnowledgeBase, regions: list[str]) -> tuple[float, tuple[Procedure, int] | None]:
    """The step of ``regions``' procedures whose title ``thing`` names best, with its score."""
    best: tuple[float, tuple[Procedure, int] | None] = (0.0, None)
    for key in regions:
        proc = kb.procedures.get(key)
        for i, step in enumerate(proc.steps if proc else ()):
            score = max(similarity(thing, step.title.zh), *(_names(thing, w) for w in step.says))
            if proc is not None and score > best[0]:
                best = (score, (proc, i))
    return best


def _says_something(thing: str, retriever: Retriever) -> bool:
    """Whether ``thing`` holds a word more specific than the procedure's everyday ones
    (跨境电商, 企业, 办理): a word at most a fifth of the entries use."""
    n = len(retriever.kb.entries)
    generic = default_cues().procedure_words
    return any(
        0 < retriever.document_frequency(w) * 5 < n
        for w in retriever.tok.words(thing)
        if len(w) >= 2 and w not in generic
    )


def _step_of(proc: Procedure, entry_id: str) -> tuple[int, Step] | None:
    for i, step in enumerate(proc.steps):
        if entry_id in step.see:
            return i, step
    return None


def _first_entry(kb: KnowledgeBase, step: Step) -> Entry | None:
    return kb.by_id.get(step.see[0]) if step.see else None


def _next_step(kb: KnowledgeBase, proc: Procedure, index: int) -> Next | None:
    if index + 1 >= len(proc.steps):
        return None
    step = proc.steps[index + 1]
    entry = _first_entry(kb, step)
    if entry is None:
        return None
    return Next(proc.region, entry, step, index + 2, len(proc.steps))


# A finished thing that names an option ("线下制完卡") fits that branch's actions better.
_OPTION_BONUS = 0.1
_NAME_WEIGHT = 0.8
_CONTAINED = 0.55
# At most this many actions follow, conditional ones first, up to the first that surely does.
_MAX_THEN = 3


def _names(thing: str, words: str) -> float:
    """How well ``thing`` names ``words``: said in it whole ("报关入口的企业备案交上去"
    holds 报关入口), the more of it the better; else by shared bigrams."""
    words = _normal(words)
    if len(words) >= 2 and words in thing:
        return _CONTAINED + (1 - _CONTAINED) * len(words) / len(thing)
    return similarity(thing, words)


def _said_options(thing: str, proc: Procedure) -> dict[str, set[str]]:
    """The options ``thing`` names by their words ("线下制完卡": card_channel offline)."""
    said: dict[str, set[str]] = {}
    for choice in proc.choices:
        for option in choice.options:
            if any(len(w) >= 2 and _normal(w) in thing for w in option.says):
                said.setdefault(choice.id, set()).add(option.value)
    return said


def _action_score(thing: str, action: Action, said: dict[str, set[str]]) -> tuple[float, bool]:
    """How well ``thing`` names ``action`` as done (or, second, as what it follows)."""
    # Its own words say it best; its long name shares words with its neighbours'.
    done = max(_NAME_WEIGHT * similarity(thing, action.name.zh), *(_names(thing, text) for text in action.says))
    after = max((_names(thing, text) for text in action.after), default=0.0)
    score = max(done, after)
    for key, values in action.when.items():
        if key in said:
            score += _OPTION_BONUS if said[key] & set(values) else -_OPTION_BONUS
    return score, after > done


def _relation(when: Condition, known: dict[str, set[str]]) -> str:
    """Whether an action applies given what is known: ``sure``, ``maybe`` or ``never``."""
    out = "sure"
    for key, values in when.items():
        if key not in known:
            out = "maybe"
        elif not known[key] & set(values):
            return "never"
        elif not known[key] <= set(values):
            out = "maybe"
    return out


def _option_labels(proc: Procedure, when: Condition, known: dict[str, set[str]]) -> tuple[Text, ...]:
    labels: list[Text] = []
    for key, values in when.items():
        if key in known and known[key] <= set(values):
            continue
        choice = proc.choice(key)
        labels.extend(o.label for o in choice.options if o.value in values)
    return tuple(labels)


def _after_action(kb: KnowledgeBase, proc: Procedure, si: int, ai: int, known: dict[str, set[str]]) -> Next | None:
    """What follows action ``ai`` of step ``si`` (``ai`` itself when it is what the finished
    thing precedes): its step's next actions up to the first that surely applies, else the
    next step."""
    step = proc.steps[si]
    then: list[Then] = []
    for action in step.actions[ai:]:
        relation = _relation(action.when, known)
        entry = kb.by_id.get(action.see)
        if relation == "never" or entry is None:
            continue
        then.append(Then(action, entry, _option_labels(proc, action.when, known)))
        if relation == "sure" or len(then) >= _MAX_THEN:
            break
    if then and not then[-1].only_if:
        return Next(proc.region, then[0].entry, actions=tuple(then))
    following = _next_step(kb, proc, si)
    if following is None:
        return Next(proc.region, then[0].entry, actions=tuple(then)) if then else None
    return Next(
        proc.region, following.entry, following.step, following.step_number, following.steps_total, actions=tuple(then)
    )


def _named_action(thing: str, kb: KnowledgeBase, regions: list[str], said_in: str) -> tuple[float, Next | None]:
    """The action of ``regions``' procedures ``thing`` names best, and what follows it;
    ``said_in`` (the whole message, places too) tells which options the user has."""
    best: tuple[float, tuple[Procedure, int, int, dict[str, set[str]]] | None] = (0.0, None)
    for key in regions:
        proc = kb.procedures.get(key)
        if proc is None:
            continue
        said = _said_options(normalize(said_in), proc)
        for si, step in enumerate(proc.steps):
            for ai, action in enumerate(step.actions):
                score, precedes = _action_score(thing, action, said)
                if score > best[0]:
                    known = {**{k: set(v) for k, v in action.when.items()}, **said}
                    best = (score, (proc, si, ai if precedes else ai + 1, known))
    if best[1] is None:
        return best[0], None
    proc, si, start, known = best[1]
    return best[0], _after_action(kb, proc, si, start, known)


def find_next(thing: str, retriever: Retriever, region: str | None) -> Next | None:
    """What comes after ``thing`` in ``region``'s procedure (both regions when None): the
    next action of its step, the next step, or the next part of an entry's chain."""
    kb = retriever.kb
    regions = [region] if region else list(kb.procedures)
    message = thing
    said = _content(thing, retriever)
    thing = default_cues().without_done(said)
    score, named = _named_step(thing, kb, regions)
    best: tuple[float, Next | None] = (score, _next_step(kb, named[0], named[1]) if named else None)
    # Actions are also named by how they end ("卡拿到了": the card is in hand).
    for words in dict.fromkeys((thing, said.rstrip("了啦"))):
        action_score, after = _named_action(words, kb, regions, message)
        if after is not None and action_score >= best[0]:
            best = (action_score, after)
    for key in regions:
        proc = kb.procedures.get(key)
        if proc is None:
            continue
        for entry in (e for e in kb.entries if e.region == key):
            for chain in chains(entry):
                for j, element in enumerate(chain):
                    score = similarity(thing, element)
                    if score <= best[0]:
                        continue
                    if j + 1 < len(chain):
                        best = (score, Next(key, entry, element=chain[j + 1]))
                    else:  # the chain's end: what follows the step it belongs to
                        found = _step_of(proc, entry.id)
                        best = (score, _next_step(kb, proc, found[0]) if found else None)
    if best[0] >= _MATCH_MIN:
        return best[1]
    return _next_by_search(thing, retriever, regions)


def _next_by_search(thing: str, retriever: Retriever, regions: list[str]) -> Next | None:
    """The finished thing is an entry the search finds: the entry after it in its step, or
    the next step when it is the step's last."""
    kb = retriever.kb
    hits: list[Hit] = []
    for key in regions:
        hits.extend(retriever.search(thing, key, k=1))
    hits.sort(key=lambda h: h.score, reverse=True)
    if not hits or hits[0].confidence < _ENTRY_MIN:
        return None
    entry = hits[0].entry
    if similarity(thing, title(entry)) < _MATCH_MIN:
        # What was done is a part of this entry ("企业基本信息填完"): the entry tells what follows.
        return Next(entry.region, entry, element="", within=True)
    proc = kb.procedures.get(entry.region)
    found = _step_of(proc, entry.id) if proc else None
    if proc is None or found is None:
        return None
    index, step = found
    position = step.see.index(entry.id)
    if position + 1 < len(step.see):
        following = kb.by_id.get(step.see[position + 1])
        if following is not None:
            return Next(entry.region, following)
    return _next_step(kb, proc, index)


@dataclass(frozen=True)
class Overview:
    """A region's whole procedure (its overview entry), or one step of it (``step``)."""

    region: str
    entry: Entry | None = None
    step: Step | None = None
    step_number: int = 0
    steps_total: int = 0


def find_overview(thing: str, retriever: Retriever, region: str | None) -> list[Overview]:
    """What "整个流程 / 要办哪些手续 / X包括哪几步" asks for: the step ``thing`` names, else the
    whole procedure of ``region`` (of every region when none is known)."""
    kb = retriever.kb
    thing = _content(thing, retriever)
    regions = [region] if region else list(kb.procedures)
    score, named = _named_step(thing, kb, regions)
    if named is not None and score >= _MATCH_MIN:
        step_of, i = named
        return [Overview(step_of.region, step=step_of.steps[i], step_number=i + 1, steps_total=len(step_of.steps))]
    if _says_something(thing, retriever):
        return []  # about something else than a step ("入驻一共分几步"): the search knows better
    out = []
    for key in regions:
        proc = kb.procedures.get(key)
        entry = kb.by_id.get(proc.overview) if proc and proc.overview else None
        if entry is not None:
            out.append(Overview(key, entry=entry))
    return out


@dataclass(frozen=True)
class Before:
    """What the procedure puts before a step: the steps ahead of it, and where a step said not
    done ("没做过JC备案能直接申请本地备案吗") stands beside it."""

    region: str
    step: Step
    step_number: int
    earlier: tuple[Step, ...]
    missing: Step | None = None
    missing_number: int = 0


def find_before(target: str, missing: str | None, retriever: Retriever, region: str | None) -> Before | None:
    """The step ``target`` names and the one ``missing`` names in the same procedure (None when
    either names no step: the search answers what the question is about)."""
    kb = retriever.kb
    regions = [region] if region else list(kb.procedures)
    score, named = _named_step(_content(target, retriever), kb, regions)
    if named is None or score < _MATCH_MIN:
        return None
    proc, j = named
    if missing is None:
        return Before(proc.region, proc.steps[j], j + 1, tuple(proc.steps[:j]))
    m_score, m_named = _named_step(_content(missing, retriever), kb, [proc.region])
    if m_named is None or m_score < _MATCH_MIN or m_named[1] == j:
        return None
    i = m_named[1]
    return Before(proc.region, proc.steps[j], j + 1, tuple(proc.steps[:j]), proc.steps[i], i + 1)
