"""Turn a question into a cited answer from the knowledge base, or a fallback.

Every line of an answer comes from a knowledge entry (or the region's branch list), so an
answer can only state numbers, addresses and URLs the knowledge base holds; the drift check
ties those to the manuals. Each answer ends with the manual sections it used.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from pypinyin import lazy_pinyin

from bot.core.compose import Before, Next, Overview, find_before, find_next, find_overview
from bot.core.messages import Messages, default_messages
from knowledge.index import Hit, Retriever
from knowledge.render import answer_lines, title
from knowledge.schema import BranchEntry, CodeEntry, Entry, TermEntry
from knowledge.text import normalize
from nlu.cues import Cues, default_cues
from nlu.gazetteer import default_gazetteer
from nlu.hybrid import Strategy, rank
from nlu.interpreter import Understanding
from nlu.places import default_other_places

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "SUGGEST_THRESHOLD",
    "Answer",
    "Source",
    "answer_entry",
    "answer_question",
    "source_line",
]

# Below this share of the question covered by the best entry, the bot says it does not know.
# Calibrated on tests/data/questions.yaml (see bench/answer_latency.py and the README).
CONFIDENCE_THRESHOLD = 0.36
# Below the answer threshold but at least this close, the best entries are offered as
# "did you mean" buttons instead of "I don't know" (Rasa's two-stage fallback does the same).
SUGGEST_THRESHOLD = 0.22
SUGGESTIONS = 3
_SUGGEST_SPREAD = 0.12
# Below the threshold, the best entry is still answered when it is at least this confident
# and this far ahead of the next entry (tuned on the corpus's tuning and fresh parts).
_CLEAR_MIN = 0.26
_CLEAR_MARGIN = 0.08
# A question asked at a walkthrough step is most likely about that step: the step's entries
# (those it cites and those of its manual section) are this much more confident.
CONTEXT_BONUS = 0.1
# A second region's entry is answered too when the region is unknown and it is this close.
_AMBIGUITY_RATIO = 0.9


@dataclass(frozen=True)
class Source:
    manual: str
    section: str


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    intent: str
    confidence: float
    region: str | None
    sources: tuple[Source, ...] = ()
    fallback: bool = False
    entry_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = field(default=())  # regions answered; two when ambiguous
    # Entries close to the question but below the answer threshold ("did you mean"), best first.
    suggestions: tuple[str, ...] = ()
    # Places the question names that no manual covers (上海, Shenzhen): why it is not answered.
    elsewhere: tuple[str, ...] = ()
    # What was asked about that no manual explains ("代理企业是指什么", "API版的材料"): the
    # suggestions are where the manuals mention it.
    undefined: str = ""
    # An overview or "what next" answer offers the walkthrough: (region, step to start at, or "").
    offer: tuple[str, str] | None = None

    @property
    def ambiguous(self) -> bool:
        return len(self.regions) > 1


def source_line(cite: str, lang: str) -> str:
    """The closing citation line of an answer."""
    return f"Source: {cite}" if lang == "en" else f"来源：{cite}"


# An entry this close to the best (by ranking score) that shows what was asked goes first.
_ASKED_MARGIN = 0.8


def _branch_of_the_place(query: str, hits: list[Hit], cues: Cues) -> list[Hit]:
    """ "Where can I get the e-port card in Baoji?": asked where, with a city or district that
    has a card-agent branch, that branch answers (not how cards are made in general)."""
    if not hits:
        return hits
    if isinstance(hits[0].entry, BranchEntry) or not cues.asks_where(query):
        return hits
    places = default_gazetteer().values(query)
    city, district = places.get("city"), places.get("district")
    if city is None and district is None:
        return hits
    for i, hit in enumerate(hits[:5]):
        e = hit.entry
        if isinstance(e, BranchEntry) and (e.city == city or (district is not None and e.district == district)):
            top = hits[0]
            return [Hit(e, top.score, max(hit.confidence, top.confidence)), *hits[:i], *hits[i + 1 :]]
    return hits


def _showing_what_was_asked(query: str, hits: list[Hit], retriever: Retriever, cues: Cues) -> list[Hit]:
    """ "DXPID大概多久能下来": of the best entries, the one that gives a duration answers it;
    the best entry about DXPID without one does not. Hours, fees, addresses and phones alike."""
    asked = cues.asked_attributes(query)
    if not asked:
        return hits
    kb = retriever.kb

    def shows(hit: Hit) -> bool:
        return cues.shows(asked, "\n".join(answer_lines(hit.entry, kb)))

    top = hits[0]
    if shows(top):
        return hits
    for i, hit in enumerate(hits[1:4], start=1):
        if hit.score < _ASKED_MARGIN * top.score:
            break
        if shows(hit):
            better = Hit(hit.entry, top.score, max(hit.confidence, top.confidence))
            return [better, *hits[:i], *hits[i + 1 :]]
    return hits


def _options_named(text: str, cues: Cues) -> dict[str, set[str]]:
    """The values of alternative entities (Web/API/MQ版, 线上/线下, 9610/1210) ``text`` names."""
    named: dict[str, set[str]] = {}
    for mention in default_gazetteer().find(text):
        if mention.entity in cues.alternatives:
            named.setdefault(mention.entity, set()).add(mention.value)
    return named


def _option_fit(asked: dict[str, str], hit: Hit, retriever: Retriever, cues: Cues) -> int:
    """How well the entry is about the option asked: 2 it names that option alone, 1 it names
    it among others or names none of them, 0 it names only others (it is about those)."""
    named = _options_named("\n".join([hit.entry.title, *answer_lines(hit.entry, retriever.kb)]), cues)
    fits = [2 if named.get(e) == {v} else 1 if v in named.get(e, {v}) else 0 for e, v in asked.items()]
    return min(fits)


def _about_the_option_asked(query: str, hits: list[Hit], retriever: Retriever, cues: Cues) -> list[Hit] | None:
    """ "API版要交哪些材料": of the best entries, the one about API版 alone answers it, else one
    that names it among others or names no 开通方式 at all; the MQ版 list does not. None when
    none of the close ones fits: the manuals say nothing of that option (offered as
    suggestions, not answered as the other)."""
    asked = {entity: next(iter(values)) for entity, values in _options_named(query, cues).items() if len(values) == 1}
    if not asked or not hits:
        return hits
    top = hits[0]
    close = [h for i, h in enumerate(hits[:4]) if not i or h.score >= _ASKED_MARGIN * top.score]
    fit = [_option_fit(asked, h, retriever, cues) for h in close]
    best = max(fit)
    if best == 0:
        return None
    i = fit.index(best)
    if i == 0:
        return hits
    hit = hits[i]
    return [Hit(hit.entry, top.score, max(hit.confidence, top.confidence)), *hits[:i], *hits[i + 1 :]]


def _near_miss(
    question: str, confidence: float, region: str | None, suggestions: tuple[str, ...], undefined: str = ""
) -> Answer:
    """Not an answer, with the entries that may still help one tap away."""
    return Answer(
        question, "", "fallback", confidence, region, fallback=True, suggestions=suggestions, undefined=undefined
    )


def _defines_another_term(term: str, entry: Entry) -> bool:
    """ "代理企业是指什么" with the definition of 企业用户 first: that defines another term."""
    if not isinstance(entry, TermEntry):
        return False
    asked, defined = normalize(term), normalize(entry.term)
    names = [defined, *(normalize(k) for k in entry.keywords)]
    return not any(n in asked or asked in n for n in names)


def _mentioning(term: str, hits: list[Hit], retriever: Retriever) -> tuple[str, ...]:
    """The entries, best ranked first, whose answers use ``term`` (where the manuals speak
    of what they do not define)."""
    asked = normalize(term)
    ranked = [h.entry for h in hits] + [e for e in retriever.kb.entries if e.id not in {h.entry.id for h in hits}]
    found = [e.id for e in ranked if asked in normalize("\n".join(answer_lines(e, retriever.kb)))]
    return tuple(found[:SUGGESTIONS])


# A "what next" answer shows at most this many entries' details.
_NEXT_ENTRIES = 2

# A marker score: this hit is the second side of a comparison, to be answered beside the first.
_SIDE = -1.0
# Each side's own entry is answered beside the one about both when it is this close to it.
_OWN_SIDE_RATIO = 0.9


def _both_sides(
    query: str, hits: list[Hit], retriever: Retriever, region: str | None, threshold: float, cues: Cues
) -> list[Hit] | None:
    """ "A和B有什么区别", "A和B的电话": when each side has its own entry, both are answered.

    Only when the question compares (区别, 一样吗, 分别), or when the best entry for the
    whole question answers one side only. One entry best for both sides is the answer
    ("IC卡和UKEY有啥区别"), with each side's own entry when both have one ("线上和线下办卡
    有啥不一样": the two ways, then each way's details).
    """
    sides = cues.comparison(query)
    if sides is None:
        return None
    # A place said once counts for both sides ("横琴的主管海关和检验检疫机构代码").
    places = retriever.place_words(query)
    first, second = (" ".join([*(p for p in places if p not in side), side]) for side in (sides.first, sides.second))
    a = retriever.search(first, region, k=5)
    b = retriever.search(second, region, k=5)
    if not a or not b:
        return None
    a, b = _own_first(a, b), _own_first(b, a)
    whole = hits[0].entry.id
    if a[0].entry.id == b[0].entry.id:
        shared = a[0]
        if not cues.compares(query) or shared.confidence < threshold:
            return None
        own_a = a[1] if len(a) > 1 else None
        own_b = next((h for h in b[1:] if own_a is None or h.entry.id != own_a.entry.id), None)
        floor = _OWN_SIDE_RATIO * shared.confidence
        if (
            own_a is not None
            and own_b is not None
            and own_a.entry.id != own_b.entry.id
            and min(own_a.confidence, own_b.confidence) >= max(floor, threshold)
        ):
            return [shared, Hit(own_a.entry, _SIDE, shared.confidence), Hit(own_b.entry, _SIDE, shared.confidence)]
        return [shared, *(h for h in hits if h.entry.id != shared.entry.id)]
    if min(a[0].confidence, b[0].confidence) < threshold:
        return None
    if not cues.compares(query) and whole not in (a[0].entry.id, b[0].entry.id):
        return None
    one, other = a[0], b[0]
    confidence = min(one.confidence, other.confidence)
    return [Hit(one.entry, one.score, confidence), Hit(other.entry, _SIDE, confidence)]


def _own_first(side: list[Hit], other: list[Hit]) -> list[Hit]:
    """``side``'s hits with its own entry first: of those about as good as its best, the one
    that fits this side most above the other ("有卡和没卡注册": 无卡 registration for 没卡,
    not the registration page both share)."""
    theirs = {h.entry.id: h.confidence for h in other}
    near = [h for h in side[:3] if h.confidence >= _OWN_SIDE_RATIO * side[0].confidence]
    own = max(near, key=lambda h: h.confidence - theirs.get(h.entry.id, 0.0))
    if own is side[0]:
        return side
    return [own, *(h for h in side if h is not own)]


def _stands_out(hits: list[Hit]) -> bool:
    """Whether the best entry, though below the answer threshold, is far ahead of every other
    ("卡办好了一直没去拿会咋样": only the 90-day entry is near): Rasa's fallback decides on the
    margin between the top two as well as on the top's confidence."""
    top = hits[0]
    if top.confidence < _CLEAR_MIN:
        return False
    second = next((h.confidence for h in hits[1:] if h.entry.id != top.entry.id), 0.0)
    return top.confidence - second >= _CLEAR_MARGIN


def _suggestions(hits: list[Hit]) -> tuple[str, ...]:
    """The entries close enough to offer as "did you mean" (at most ``SUGGESTIONS``)."""
    near = [h for h in hits if h.confidence >= SUGGEST_THRESHOLD]
    if not near:
        return ()
    # Only those about as good as the best: a long tail of weak guesses helps nobody.
    floor = max(SUGGEST_THRESHOLD, near[0].confidence - _SUGGEST_SPREAD)
    return tuple(dict.fromkeys(h.entry.id for h in near if h.confidence >= floor))[:SUGGESTIONS]


def _code_family(retriever: Retriever, top: CodeEntry, question: str) -> list[Entry]:
    """Every code of the series ``top`` belongs to ("KJDS那三个表分别是啥": KJDS-001 to -003):
    the region's codes with the same letters before the number, in code order; not when the
    question names codes of its own ("KJDS-002 与 KJDS-003 分别是什么")."""
    prefix = re.match(r"[A-Za-z]+", top.code)
    if prefix is None:
        return [top]
    family = sorted(
        (
            e
            for e in retriever.kb.entries
            if isinstance(e, CodeEntry) and e.region == top.region and e.code.startswith(prefix.group())
        ),
        key=lambda e: e.code,
    )
    asked = normalize(question)
    if any(normalize(e.code) in asked for e in family):
        return [top]
    return list(family) or [top]


def _place_codes(retriever: Retriever, top: CodeEntry, question: str) -> list[Entry]:
    """Every code of the place asked about ("斗门两个代码": 主管海关 and 检验检疫机构), when the
    question wants them all; the codes of a place are those whose entries name it."""
    gazetteer = default_gazetteer()
    place = gazetteer.values(question).get("district")
    if place is None or gazetteer.values(" ".join(top.keywords)).get("district") != place:
        return [top]
    codes = [
        e
        for e in retriever.kb.entries
        if isinstance(e, CodeEntry)
        and e.region == top.region
        and gazetteer.values(" ".join(e.keywords)).get("district") == place
    ]
    return [top, *(e for e in codes if e.id != top.id)]


# Words of every branch's English name: none of them singles one out.
_BRANCH_WORDS_EN = frozenset(
    {"ccb", "xi", "an", "branch", "sub", "business", "department", "road", "street", "city", "new", "district"}
    | {"county", "provincial", "shaanxi"}
)


def _own_words_en(branch: BranchEntry) -> set[str]:
    """The words of a branch's English name that no other branch of its city has."""
    own = set(re.findall(r"[a-z]+", normalize(branch.en.name or ""))) - _BRANCH_WORDS_EN
    return own - {"".join(lazy_pinyin(branch.city)), "".join(lazy_pinyin(branch.district.rstrip("区县")))}


def _city_branches(retriever: Retriever, top: BranchEntry, question: str) -> list[Entry]:
    """All branches of the city or district asked about ("西安高新区附近哪个建行": both of
    高新区), unless the question singles one out by its name or street."""
    norm = normalize(question)
    places = default_gazetteer().values(question)
    district = places.get("district")
    in_district = district is not None and district == top.district
    # The city by its Chinese name or any other ("xi'an", "西安市").
    if top.city not in norm and places.get("city") != top.city and not in_district:
        return [top]
    if any(normalize(k) in norm for k in [top.name, *top.keywords] if normalize(k) != normalize(district or "")):
        return [top]
    # A branch of the city named by its English name's own words ("ccb branch on jinye road in xi'an").
    words = set(re.findall(r"[a-z]+", norm))
    named = [b for b in retriever.kb.branches(top.region, top.city) if _own_words_en(b) & words]
    if words and len(named) == 1:
        return list[Entry](named)
    if in_district:
        city = top.city if top.city in norm or places.get("city") == top.city else None
        return [b for b in retriever.kb.branches(top.region, city) if b.district == district] or [top]
    if normalize(top.district) in norm:
        return [top]
    return list(retriever.kb.branches(top.region, top.city)) or [top]


def _block(entries: list[Entry], retriever: Retriever, lang: str, with_region: bool) -> tuple[list[str], list[Source]]:
    kb = retriever.kb
    lines: list[str] = []
    sources: list[Source] = []
    region = kb.regions[entries[0].region]
    if with_region:
        lines.append(f"【{region.name_en if lang == 'en' else region.name}】")
    for i, entry in enumerate(entries):
        if i:
            lines.append("")
        lines.extend(answer_lines(entry, kb, lang))
        src = Source(
            kb.manuals[entry.manual].label_en if lang == "en" else kb.manuals[entry.manual].label, entry.section
        )
        if src not in sources:
            sources.append(src)
    cite = ", ".join(f"{s.manual} {s.section}" for s in sources)
    lines.append(source_line(cite, lang))
    return lines, sources


def _in_context(hits: list[Hit], context: Collection[str]) -> list[Hit]:
    """``hits`` with the step's entries made ``CONTEXT_BONUS`` more confident, best first."""
    if not context or not hits:
        return hits
    bonus = [
        replace(h, confidence=min(1.0, h.confidence + CONTEXT_BONUS)) if h.entry.id in context else h for h in hits
    ]
    return sorted(bonus, key=lambda h: h.confidence, reverse=True)


def answer_question(
    question: str,
    retriever: Retriever,
    *,
    region: str | None = None,
    lang: str = "zh",
    threshold: float = CONFIDENCE_THRESHOLD,
    nlu: Understanding | None = None,
    strategy: Strategy = "hybrid",
    messages: Messages | None = None,
    context: Collection[str] = (),
) -> Answer:
    """Answer ``question`` from the knowledge base.

    ``region`` is the region the user already gave; a region named in the question wins.
    With no region, an entry of each region is answered when both fit about equally well.
    ``nlu`` is the NLU engine's reading of the question; with Rasa's, entries are ranked by
    ``strategy`` (see ``nlu.hybrid``), otherwise by the lexical retriever alone.
    """
    msg = messages or default_messages()
    query = nlu.query if nlu is not None and nlu.text == question else question
    named_region = retriever.detect_region(query)
    if named_region is None and nlu is not None and nlu.engine == "rasa":
        named_region = nlu.entities.get("region")
    # Words only one manual uses place the question there, whatever was remembered.
    own_region = None if named_region else retriever.region_of_terms(query)
    asked_region = named_region or own_region or region
    hits = _in_context(rank(query, retriever, region=asked_region, nlu=nlu, strategy=strategy), context)
    crossed = own_region is not None and region is not None and own_region != region
    wider: list[Hit] = []
    if not named_region and not own_region and region and (not hits or hits[0].confidence < threshold):
        # The remembered region has no answer: the other manual may (said with its name).
        wider = rank(query, retriever, region=None, nlu=nlu, strategy=strategy)
        if wider and wider[0].entry.region != region and wider[0].confidence >= threshold:
            hits = [h for h in wider if h.entry.region == wider[0].entry.region]
            crossed = True
    places = [] if named_region else default_other_places().find(query)
    elsewhere = bool(places)
    cues = default_cues()
    finished = cues.finished(query)
    if finished and not elsewhere:
        following = find_next(finished, retriever, named_region or own_region or region)
        if following is not None:
            return _next_answer(question, following, retriever, lang, msg)
    prerequisite = cues.prerequisite(query)
    if prerequisite is not None and not elsewhere:
        before = find_before(*prerequisite, retriever, named_region or own_region or region)
        if before is not None:
            # The entry that answers the question's own words too, when one does
            # ("没有单一窗口账号能线上办卡吗": the no-card registration).
            best = next(
                (h.entry for h in hits[:1] if h.confidence >= threshold and h.entry.region == before.region), None
            )
            return _before_answer(question, before, retriever, lang, msg, best)
    overview = cues.without_overview(query)
    if overview is not None and not elsewhere:
        parts = find_overview(overview, retriever, named_region or own_region or region)
        if parts:
            return _overview_answer(question, parts, retriever, lang, msg)
    if hits and not elsewhere:
        hits = _branch_of_the_place(query, hits, cues)
        hits = _showing_what_was_asked(query, hits, retriever, cues)
        fitting = _about_the_option_asked(query, hits, retriever, cues)
        if fitting is None:
            return _near_miss(question, hits[0].confidence, asked_region, tuple(h.entry.id for h in hits[:SUGGESTIONS]))
        hits = fitting
        term = cues.defined_term(query)
        if term is not None and _defines_another_term(term, hits[0].entry):
            as_typed = cues.defined_term(question) or term
            return _near_miss(question, hits[0].confidence, asked_region, _mentioning(term, hits, retriever), as_typed)
        both = _both_sides(query, hits, retriever, hits[0].entry.region if crossed else asked_region, threshold, cues)
        if both is not None:
            hits = both
    if hits and retriever.covers_only_places(query, hits[0].entry):
        # Where, but nothing the entry says ("宝鸡今天堵车吗"): no answer, and no branch to offer.
        return Answer(question, "", "fallback", hits[0].confidence, asked_region, fallback=True)
    if not hits or (hits[0].confidence < threshold and not _stands_out(hits)) or elsewhere:
        conf = hits[0].confidence if hits else 0.0
        # Near misses of the remembered region first, else of either manual.
        suggestions = () if elsewhere else (_suggestions(hits) or _suggestions(wider))
        return Answer(
            question,
            "",
            "fallback",
            conf,
            asked_region,
            fallback=True,
            suggestions=suggestions,
            elsewhere=tuple(dict.fromkeys(places)),
        )

    top = hits[0]
    chosen: list[Hit] = [top]
    if len(hits) > 1 and hits[1].score == _SIDE:
        chosen.extend(h for h in hits[1:] if h.score == _SIDE)  # the sides of a comparison
    elif asked_region is None:
        other = next((h for h in hits if h.entry.region != top.entry.region), None)
        if other is not None and other.confidence >= threshold and other.score >= _AMBIGUITY_RATIO * top.score:
            chosen.append(other)

    lines: list[str] = []
    sources: list[Source] = []
    entry_ids: list[str] = []
    for hit in chosen:
        group: list[Entry] = [hit.entry]
        if isinstance(hit.entry, BranchEntry):
            group = _city_branches(retriever, hit.entry, query)
        elif isinstance(hit.entry, CodeEntry) and cues.wants_all(query):
            group = _place_codes(retriever, hit.entry, query)
            if group == [hit.entry]:
                group = _code_family(retriever, hit.entry, query)
        # Each entry once: both sides of "斗门的两个代码分别是" expand to both codes.
        group = [e for e in group if e.id not in entry_ids]
        if not group:
            continue
        if lines:
            lines.append("")
        several_regions = len({h.entry.region for h in chosen}) > 1
        block, srcs = _block(group, retriever, lang, with_region=several_regions or crossed)
        lines.extend(block)
        sources.extend(s for s in srcs if s not in sources)
        entry_ids.extend(e.id for e in group)

    text = "\n".join(lines)
    unknown = retriever.unknown_codes(query)
    if unknown and not any(code in text for code in unknown):
        # A code no manual has ("9710"): the entry of its neighbours (9610, 1210) is no answer.
        return _near_miss(question, top.confidence, asked_region, tuple(entry_ids[:SUGGESTIONS]))
    if cues.unanswered_attributes(query, text):
        # About the right thing, but without what was asked (hours, a fee, an address the
        # manuals never give): not an answer. The entries may still help, one tap away.
        return _near_miss(question, top.confidence, asked_region, tuple(entry_ids[:SUGGESTIONS]))
    regions = tuple(dict.fromkeys(h.entry.region for h in chosen))
    return Answer(
        question=question,
        text=text,
        intent=f"faq/{top.entry.id}",
        confidence=top.confidence,
        region=regions[0] if len(regions) == 1 else None,
        sources=tuple(sources),
        entry_ids=tuple(entry_ids),
        regions=regions,
        offer=_overview_offer(retriever, entry_ids),
    )


def _overview_offer(retriever: Retriever, entry_ids: list[str]) -> tuple[str, str] | None:
    """The walkthrough offered under the manual's own overview of a procedure ("珠海接入整体
    流程" answered by its entry), as under a composed one."""
    for region, proc in retriever.kb.procedures.items():
        if proc.overview is not None and proc.overview in entry_ids:
            return (region, "")
    return None


def answer_entry(question: str, entry_id: str, retriever: Retriever, *, lang: str = "zh") -> Answer | None:
    """The answer of one entry, as when a "did you mean" suggestion is taken."""
    entry = retriever.kb.by_id.get(entry_id)
    if entry is None:
        return None
    lines, sources = _block([entry], retriever, lang, with_region=False)
    return Answer(
        question=question,
        text="\n".join(lines),
        intent=f"faq/{entry.id}",
        confidence=1.0,
        region=entry.region,
        sources=tuple(sources),
        entry_ids=(entry.id,),
        regions=(entry.region,),
    )


def _before_answer(
    question: str, before: Before, retriever: Retriever, lang: str, msg: Messages, best: Entry | None = None
) -> Answer:
    """ "X之前要先做什么" / "没做A能先做B吗": the procedure's order around the step, each step
    with its section; a step that may be skipped says when."""
    kb = retriever.kb
    proc = kb.procedures[before.region]
    manual = kb.manuals[proc.manual]
    title_of = before.step.title.get(lang)
    lines: list[str] = []
    missing = before.missing
    if missing is not None:
        # The step not done comes later ("可以"), or before the one asked about.
        key = "compose.before_not_needed" if before.missing_number > before.step_number else "compose.before_needed"
        lines.append(
            msg.get(
                key,
                lang,
                number=str(before.step_number),
                title=title_of,
                other_number=str(before.missing_number),
                other=missing.title.get(lang),
            )
        )
    shown: list[Entry] = []
    if missing is not None:
        # What the manual says of the step not done (often whether every company needs it).
        first = kb.by_id.get(missing.see[0]) if missing.see else None
        if first is not None:
            shown.append(first)
    if best is not None and best not in shown:
        shown.append(best)
    if not before.earlier:
        lines.append(msg.get("compose.before_first", lang, title=title_of))
    elif missing is None:
        lines.append(msg.get("compose.before_steps", lang, number=str(before.step_number), title=title_of))
        for i, step in enumerate(before.earlier, start=1):
            line = f"• {i}. {step.title.get(lang)}"
            if step.skip_reason:
                line += msg.get("compose.before_skippable", lang, reason=step.skip_reason.get(lang).rstrip("。."))
            lines.append(line)
    steps = (*before.earlier, before.step) if missing is None else (missing, before.step)
    label = manual.label_en if lang == "en" else manual.label
    sources = tuple(Source(label, sec) for sec in dict.fromkeys(st.section for st in steps if st.section))
    lines.append(source_line(", ".join(f"{s.manual} {s.section}" for s in sources), lang))
    if shown:
        block, srcs = _block(shown, retriever, lang, with_region=False)
        lines.extend(["", *block])
        sources += tuple(s for s in srcs if s not in sources)
    return Answer(
        question=question,
        text="\n".join(lines),
        intent=f"before/{before.region}/{before.step.id}",
        confidence=1.0,
        region=before.region,
        sources=sources,
        entry_ids=tuple(e.id for e in shown),
        regions=(before.region,),
        offer=(before.region, before.step.id),
    )


def _next_answer(question: str, following: Next, retriever: Retriever, lang: str, msg: Messages) -> Answer:
    """ "X is done, what next": the following actions or step, then their entries, cited."""
    heads: list[str] = []
    entries: list[Entry] = []
    for i, then in enumerate(following.actions):
        name = then.action.name.get(lang)
        if then.only_if:
            condition = msg.get("compose.if_joiner", lang).join(t.get(lang) for t in then.only_if)
            name = msg.get("compose.next_if", lang, condition=condition, action=name)
        heads.append(msg.get("compose.next_action" if i == 0 else "compose.then_action", lang, action=name))
        entries.append(then.entry)
    if following.step is not None:
        heads.append(
            msg.get(
                "compose.next_step" if not heads else "compose.then_step",
                lang,
                number=str(following.step_number),
                total=str(following.steps_total),
                title=following.step.title.get(lang),
            )
        )
        entries.append(following.entry)
    elif following.element:
        heads.append(msg.get("compose.next_element", lang, element=following.element))
    elif following.within:
        heads.append(msg.get("compose.next_within", lang, title=title(following.entry, lang)))
    elif not following.actions:
        heads.append(msg.get("compose.next_entry", lang, title=title(following.entry, lang)))
    shown = list(dict.fromkeys(entries or [following.entry]))[:_NEXT_ENTRIES]
    lines, sources = _block(shown, retriever, lang, with_region=False)
    return Answer(
        question=question,
        text="\n".join([*heads, *lines]),
        intent=f"next/{following.entry.id}",
        confidence=1.0,
        region=following.region,
        sources=tuple(sources),
        entry_ids=tuple(e.id for e in shown),
        regions=(following.region,),
        offer=(following.region, _step_of(following, retriever)) if _step_of(following, retriever) else None,
    )


def _step_of(following: Next, retriever: Retriever) -> str:
    """The step a "what next" answer leads to: the next step, else the step whose actions or
    entries hold what comes next ("" when none does)."""
    if following.step is not None:
        return following.step.id
    proc = retriever.kb.procedures.get(following.region)
    wanted = {t.entry.id for t in following.actions} or {following.entry.id}
    for step in proc.steps if proc else ():
        if wanted & ({a.see for a in step.actions} | set(step.see)):
            return step.id
    return ""


def _overview_answer(question: str, parts: list[Overview], retriever: Retriever, lang: str, msg: Messages) -> Answer:
    """A region's procedure (its overview entry), or one step: its first entry's summary and
    the step's actions from the procedure data, with the step's section."""
    kb = retriever.kb
    lines: list[str] = []
    sources: list[Source] = []
    entry_ids: list[str] = []
    for part in parts:
        if lines:
            lines.append("")
        if part.entry is not None:
            block, srcs = _block([part.entry], retriever, lang, with_region=len(parts) > 1)
            lines.extend(block)
            sources.extend(s for s in srcs if s not in sources)
            entry_ids.append(part.entry.id)
            continue
        step = part.step
        assert step is not None
        proc = kb.procedures[part.region]
        manual = kb.manuals[proc.manual]
        head = msg.get(
            "compose.step_overview",
            lang,
            number=str(part.step_number),
            total=str(part.steps_total),
            title=step.title.get(lang),
        )
        lines.append(head)
        first = kb.by_id.get(step.see[0]) if step.see else None
        if first is not None and first.answer:
            lines.append(first.en.answer if lang == "en" and first.en.answer else first.answer)
        lines.extend(f"• {item.get(lang)}" for item in step.do if not item.when)
        src = Source(manual.label_en if lang == "en" else manual.label, step.section)
        lines.append(source_line(f"{src.manual} {src.section}", lang))
        sources.append(src)
        entry_ids.extend(step.see[:1])
    regions = tuple(dict.fromkeys(p.region for p in parts))
    return Answer(
        question=question,
        text="\n".join(lines),
        intent="overview",
        confidence=1.0,
        region=regions[0] if len(regions) == 1 else None,
        sources=tuple(sources),
        entry_ids=tuple(entry_ids),
        regions=regions,
        offer=(regions[0], "") if len(regions) == 1 and all(p.step is None for p in parts) else None,
    )
