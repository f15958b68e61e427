"""The walkthrough engine: runs any region's procedure (knowledge/data/procedures) step by step.

One generic engine, no handler per step: a step is shown once the choices it ``asks`` are
answered, passed over when its ``skip_if`` holds, and rendered from its data (what to do,
where, what to bring, pitfalls, waits, phones, policy note, source). Progress lives in the
conversation state per company and region, so it survives restarts with the state.

Reminders are declarative: after every event ``sync_reminders`` recomputes which reminders
the state calls for (milestone dates + rules, one idle nudge) and the store mirrors that
list into its reminder table; a fired reminder's key is remembered so it never fires twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from functools import cache, cached_property

from jieba.posseg import POSTokenizer
from rapidfuzz.distance import Levenshtein

from bot.core.messages import Messages
from bot.core.replies import Button, Reply
from bot.core.state import Awaiting, Company, ConversationState, Progress, ReminderSpec
from knowledge.loader import KnowledgeBase
from knowledge.procedure import Choice, Item, Option, Procedure, Step, matches
from knowledge.schema import HotlineEntry
from knowledge.text import normalize
from nlu.cues import default_cues
from nlu.interpreter import FAQ_INTENT, Understanding

__all__ = ["CHINA_TZ", "PREFIX", "Walkthroughs", "is_question"]

PREFIX = "wt:"
# Dates are shown, and reminders fall due, in China time.
CHINA_TZ = timezone(timedelta(hours=8), "CST")
_REMIND_AT = time(9, 0)
# "能是同一个人不", "要带原件不": a yes/no question asked with 不 at its end.
_ASKED_WITH_NOT = re.compile(r"(?:能|可以|行|是|要|用|有|会|得|需要)\S{1,16}不\s*[?？]?$")
# "卡还没办呢，…", "还没有呢": a particle that ends a statement of what is not done yet; and
# "啥都没有", "什么备案都没做过": a question word that means "any", not a question.
_NOT_ASKING = re.compile(
    r"(?:没|未|不)[^，,。?？吗]{0,8}[呢么嘛](?=\s*(?:[，,。~～!！]|$))"
    r"|(?<![什怎多那这要])么(?=\s*[，, ]\s*[^\s，,?？])"  # "电商企业么 卖自家的礼盒": a topic, said
    r"|(?:啥|什么|哪个|谁)[^，,。?？吗]{0,6}(?:都|也)(?:没|不)"
)
_MAX_COMPANY = 60
_PARTICLES = " ，,。.!！~～…哦噢喔啊呀吧呢啦嘛哈的了咯"
# A statement this short (characters) that names an option answers its choice.
_SHORT_STATEMENT = 16
# What may stand around a name given in passing ("我司名称：X。", "我是X有限公司的经办人") with
# no question in it: the name, and what the rest says is read as answers.
_NAMING_REST = 12
_NAME_PUNCT = " ，,。.：:；;!！~～"
# "先不填" and the like, alone, defer the name; a longer message says more than that.
_DEFER_MAX = 12
# A run of name characters ending with a company mark, inside a longer message.
_MARKS = (
    r"(?:有限责任公司|股份有限公司|有限公司|集团|工厂|公司|厂|商行|工作室|事务所|合作社|店|坊|铺|馆"
    r"|Co\.,? ?Ltd\.?|Ltd\.?|Limited|Inc\.?|LLC|Corp\.?)"
)
_EMBEDDED_NAME = re.compile(r"[\u4e00-\u9fffA-Za-z0-9（）()·&.'’\- ]{2,40}?" + _MARKS)
_CJK_MARK = re.compile(r"[\u4e00-\u9fff]")
_ENDS_WITH_MARK = re.compile(_MARKS + "$", re.IGNORECASE)
# What may follow a company's mark and is no part of its name ("（简称…）", "统一社会信用代码…").
# A Chinese name's last mark followed by a pause and Chinese words ("X有限公司 十位海关编码早就有了")
# ends the name too: the rest is what the message says.
_AFTER_THE_NAME = re.compile(
    r"\s*[（(]|\s*[，,]?\s*(?:统一社会信用代码|社会信用代码|信用代码|uscc)|[\s，,。;；]+[\u4e00-\u9fff]",
    re.IGNORECASE,
)
_MARK = re.compile(r"(?<![A-Za-z])" + _MARKS, re.IGNORECASE)
# "公司叫秦味坊", "公司名称是长安优选": a clause that names the company says so.
_NAMING = re.compile(
    r"(?:我们|我司|咱们|俺们)?(?:公司|企业|单位)(?:的)?(?:名字|名称|全称|全名|名)?(?:叫做|叫|是|为|系|[:：])"
    r"|(?:我们|我司|咱们|俺们)?(?:公司|企业|单位)(?:名字|名称|全称|全名|名)\s"
    r"|(?:名字|名称|全称|全名)(?:叫做|叫|是|为|系|[:：])|(?:我们|我司|咱们|俺们)(?:这边)?(?:叫做|叫)|(?:就|那就)叫(?:做)?"
)
# A proper name typed alone (no mark) is this short, and about no entry this confident.
_BARE_NAME_MAX = 12
_UNKNOWN_TOPIC = 0.3
_CJK_ONLY = re.compile(r"[\u4e00-\u9fff·]+")
_NAMING_REACH = 12  # characters from the start of a reply the naming words may end within
_NAMED_MAX = 30
_NAME_AFTER = re.compile(r"[的是叫为]|这边|那边|这里|\b(?:for|is|called|named|at|from|of)\s+", re.IGNORECASE)
# A reply this short (characters) may name an option by a part of its label ("电商").
_ABBREVIATION = 6
# A reply this long at least may be one character off an option's words (客服端 for 客户端).
_MISSPELT_MIN = 3
# A question this short before an answer only asks back ("卡？", "啥卡").
_ASKED_BACK = 4
# What may stand around a place named alone at the company prompt ("陕西的", "在珠海这边").
_PLACE_PARTICLES = "的在是这那边里儿吧呀啊哦嗯省市区,，。.!！~ "


# (state, region, step id, answers) -> the step has documents to prepare on this path.
StepForms = Callable[[ConversationState, str, str, dict[str, str]], bool]
# (state at the step) -> lines about the card the step is done with, if it needs one.
StepNote = Callable[[ConversationState], str | None]


def is_question(text: str) -> bool:
    """Whether a message reads as a question rather than a statement or an answer (the
    question cues of ``nlu/data/cues.yaml``; "卡还没办呢" is a statement)."""
    folded = normalize(text)
    return default_cues().is_question(_NOT_ASKING.sub(" ", folded)) or bool(_ASKED_WITH_NOT.search(folded))


# "不是", "不搞运输", "没做过": a negation, perhaps with its verb, just before an option's words,
# perhaps with whom it is (not) done for between ("不给别人做代理").
_NEGATED = re.compile(
    r"(?:不|没有|没|非|而非)(?:[给帮替为][\u4e00-\u9fff]{1,3}?)?[是要选用做搞办走干弄算替帮]?\s*$|\b(?:not|no|never)(?:\s+(?:a|an|the|any|really|doing))?\s*$"
)


# "线下不方便", "加密机还没到货", "邮寄不了": a negation right after an option's words (not
# 没问题, 不错: all is well).
_NEGATED_AFTER = re.compile(r"\s*(?:还|也|都|暂时|先)?(?:没|不|未)(?!问题|错|过|管|止|然|如|同|一样|是)")


# "加密机太贵了 不考虑", "接口的加密我们搞不定", "加密机额们没有": a rejection a few characters
# after an option's words (across a space, within the sentence).
_REJECTIONS = (
    r"(?:太贵|太麻烦|太复杂|搞不定|弄不了|做不了|不考虑|不要了|不买|不用了|不选|算了|不行|不方便"
    r"|没有(?!问题)|没(?!问题|错|毛病))"
)
_REJECTED_AFTER = re.compile(r"[^\s，,。!！?？；;]{0,6}?" + _REJECTIONS + r"|[^\s，,。!！?？；;]{0,6}\s+" + _REJECTIONS)


def _said_not_negated(phrase: str, text: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` once at least without a negation just before it
    or just after it ("加密机还没到货": not the encryption machine)."""
    at = text.find(phrase)
    while at >= 0:
        before = _NEGATED.search(text[max(0, at - 12) : at]) and not _NEGATED.search(phrase[:2])
        after = (_NEGATED_AFTER.match(text, at + len(phrase)) or _REJECTED_AFTER.match(text, at + len(phrase))) and (
            not _NEGATED.search(phrase)
        )
        if not before and not after:
            return True
        at = text.find(phrase, at + 1)
    return False


def _as_typed(part: str, spelt: str, typed: str) -> str:
    """``part`` of the spelt-right text as the user typed it (公司名稱是X有限公司 -> the name in
    traditional characters), when spelling kept the length; else ``part`` itself."""
    at = spelt.find(part)
    if at < 0 or len(spelt) != len(typed):
        return part
    return typed[at : at + len(part)]


def _describes(text: str) -> bool:
    """Whether a name without a company mark is a description: it starts with a verb, a
    preposition or an adverb ("我们公司是做跨境电商的": 做跨境电商 is what it does)."""
    first = next(iter(_tagger().cut(text)), None)
    return first is not None and first.flag[:1] in {"v", "p", "d"}


@cache
def _tagger() -> POSTokenizer:
    """jieba's part-of-speech tagger over the knowledge base's own tokenizer (its dictionary is
    loaded already): built on first use, only names without a mark need it."""
    from knowledge.index import default_retriever

    return POSTokenizer(default_retriever().tok.jieba)


def _place_and_name(text: str) -> bool:
    """Whether ``text`` is a place and words no entry uses ("西安秦风", "横琴远洋"): what made it
    look like a topic is the place a company is named after."""
    from knowledge.index import default_retriever
    from nlu.gazetteer import default_gazetteer

    places = [m for m in default_gazetteer().find(text) if m.entity in {"city", "district", "region"}]
    if not places:
        return False
    rest = text
    for m in sorted(places, key=lambda m: m.start, reverse=True):
        rest = rest[: m.start] + " " + rest[m.end :]
    retriever = default_retriever()
    words = retriever.tok.words(rest.strip())
    return len(rest.replace(" ", "")) >= 2 and bool(words) and all(retriever.document_frequency(w) == 0 for w in words)


def _local_date(at: datetime) -> date:
    return at.astimezone(CHINA_TZ).date()


def _due(day: date) -> datetime:
    return datetime.combine(day, _REMIND_AT, tzinfo=CHINA_TZ)


def _is_index(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts "²", which ``int`` refuses (a forged payload)."""
    return text.isascii() and text.isdigit() and len(text) <= 6


def _lines(items: Sequence[Item], answers: dict[str, str], lang: str) -> list[str]:
    return [item.get(lang) for item in items if matches(item.when, answers)]


# What is left of "跳过就行" without 跳过: at most this many characters is filler, not a reason.
_FILLER_CHARS = 2
_CJK_OR_WORD = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]+")


class Walkthroughs:
    """Runs procedures for every conversation; holds no per-conversation data."""

    def __init__(
        self,
        kb: KnowledgeBase,
        messages: Messages,
        step_forms: StepForms | None = None,
        step_note: StepNote | None = None,
    ) -> None:
        self.kb = kb
        self.msg = messages
        # Whether a step has documents to prepare (the form engine knows; None: no forms).
        self.step_forms = step_forms
        # What the card agent sees, for a step done with a card (bot.core.cards).
        self.step_note = step_note
        self._step_entries: dict[tuple[str, str], frozenset[str]] = {}

    # ------------------------------------------------------------------ small helpers
    def _m(self, state: ConversationState, key: str, **values: object) -> str:
        return self.msg.get(f"wt.{key}", state.lang, **{k: str(v) for k, v in values.items()})

    def _button(self, state: ConversationState, key: str, payload: str, **values: object) -> Button:
        return Button(self._m(state, f"buttons.{key}", **values), payload)

    def _region_name(self, state: ConversationState, region: str) -> str:
        r = self.kb.regions[region]
        return r.name_en if state.lang == "en" else r.name

    def procedure(self, state: ConversationState) -> Procedure | None:
        return self.kb.procedures.get(state.walkthrough or "")

    def _number(self, proc: Procedure, step: Step) -> int:
        return proc.index(step.id) + 1

    @staticmethod
    def applicable(step: Step, answers: dict[str, str]) -> bool:
        return not (step.skip_if and matches(step.skip_if, answers))

    def _next_open(self, proc: Procedure, prog: Progress) -> Step | None:
        for step in proc.steps:
            if step.id in prog.done or step.id in prog.skipped or not self.applicable(step, prog.answers):
                continue
            return step
        return None

    def _pending_choice(self, proc: Procedure, step: Step, answers: dict[str, str]) -> Choice | None:
        for choice_id in step.asks:
            choice = proc.choice(choice_id)
            if choice_id not in answers and matches(choice.when, answers):
                return choice
        return None

    def step_entries(self, state: ConversationState) -> frozenset[str]:
        """The knowledge entries of the step the user is at: those it cites and those of its
        manual section. A question asked there is most likely about them."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or prog.finished:
            return frozenset()
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        if step is None:
            return frozenset()
        key = (proc.region, step.id)
        if key not in self._step_entries:
            under = step.section + "."
            self._step_entries[key] = frozenset(
                {*step.see, *step.call}
                | {
                    e.id
                    for e in self.kb.entries
                    if e.region == proc.region and (e.section == step.section or e.section.startswith(under))
                }
            )
        return self._step_entries[key]

    def active(self, state: ConversationState) -> bool:
        """A walkthrough is under way (started and not finished)."""
        prog = state.progress()
        return prog is not None and not prog.finished

    # ------------------------------------------------------------------ starting
    def start(self, state: ConversationState, now: datetime, region: str | None = None, said: str = "") -> list[Reply]:
        """Start or resume; asks for the region and the company first when unknown. ``said``:
        the message that asked to start, whose facts settle choices once the walkthrough opens."""
        state.awaiting = None
        if said:
            state.stated = [*state.stated, said][-3:]
        target = region or state.walkthrough or state.region
        if target is None or target not in self.kb.procedures:
            buttons = tuple(
                Button(self._region_name(state, key), f"{PREFIX}region:{key}") for key in self.kb.procedures
            )
            state.awaiting = Awaiting(kind="region")  # a typed "陕西" answers it like the button
            return [Reply(self._m(state, "ask_region"), buttons)]
        prog = state.progress()
        started = prog is not None and bool(prog.done or prog.skipped or prog.answers)
        # Leaving a walkthrough under way asks first; an untouched one is simply left.
        if state.walkthrough and target != state.walkthrough and self.active(state) and started:
            state.awaiting = Awaiting(kind="confirm_region", ref=target)
            current, name = self._region_name(state, state.walkthrough), self._region_name(state, target)
            text = self._m(state, "confirm_region", current=current, target=name)
            buttons = (
                self._button(state, "switch", f"{PREFIX}switch:{target}", region=name),
                self._button(state, "stay", f"{PREFIX}stay", region=current),
            )
            return [Reply(text, buttons)]
        fresh = state.walkthrough != target or state.progress() is None or not started
        state.walkthrough = target
        state.region = target
        named = self.embedded_company(said) if said and state.active_company is None else None
        if named is not None:
            # "我们是西安星河贸易有限公司，想开始入网": the company is named already.
            return [Reply(self._follows(state, target)), *self.set_company(state, named, now)]
        if state.active_company is None and said and self._settle(state, self.kb.procedures[target], Progress(), said):
            # "想办陕西的入网，法人卡之前就办过了": what was said counts at once; the company is
            # named for now, and its name is taken whenever the user gives it.
            opened = self.set_company(state, None, now)
            state.name_invited = True
            return [Reply(self._follows(state, target) + "\n" + self._m(state, "name_later")), *opened]
        if state.active_company is None:
            # The first step opens at once, for 「我的企业」; its name is taken whenever the
            # user gives it. Asked for first, users answered the step's question instead.
            opened = self.set_company(state, None, now)[1:]  # the line below names it already
            state.name_invited = True
            return [Reply(self._follows(state, target) + "\n" + self._m(state, "name_any_time")), *opened]
        opened = self._open(state, now)
        if fresh and opened:
            opened[0] = Reply(self._follows(state, target) + "\n" + opened[0].text, opened[0].buttons)
        return opened

    def for_another_company(self, text: str) -> bool:
        """Whether a request to start or restart is for another company ("给另一家公司办")."""
        low = normalize(text).lower()
        return any(cue in low for cue in self.kb.walkthrough.another_company)

    def start_new_company(self, state: ConversationState, now: datetime, region: str | None = None) -> list[Reply]:
        """Start for a company not named yet: its name first, then its own progress."""
        target = region or state.walkthrough or state.region
        if target in self.kb.procedures:
            state.walkthrough = state.region = target
        state.awaiting = Awaiting(kind="company_name", ref="new")
        ask = (self._follows(state, target) + "\n" if target in self.kb.procedures else "") + self._m(
            state, "ask_company"
        )
        return [Reply(ask, (self._button(state, "later", f"{PREFIX}company:later"),))]

    def _follows(self, state: ConversationState, region: str) -> str:
        """Which region's procedure a walkthrough follows, and how to take another."""
        proc = self.kb.procedures[region]
        manual = self.kb.manuals[proc.manual]
        others = [self._region_name(state, key) for key in self.kb.procedures if key != region]
        return self._m(
            state,
            "follows",
            procedure=proc.title.get(state.lang),
            manual=manual.label_en if state.lang == "en" else manual.label,
            other=others[0] if others else "",
        )

    def offer_button(self, state: ConversationState, region: str, step_id: str) -> Button | None:
        """The button under an overview or "what next" answer that starts the walkthrough
        (at ``step_id``, the earlier steps marked done)."""
        proc = self.kb.procedures.get(region)
        if proc is None:
            return None
        if step_id and step_id in {st.id for st in proc.steps}:
            n = proc.index(step_id) + 1
            return self._button(state, "start_here", f"{PREFIX}from:{region}:{step_id}", n=n)
        return self._button(state, "start_region", f"{PREFIX}region:{region}", region=self._region_name(state, region))

    def _open(self, state: ConversationState, now: datetime) -> list[Reply]:
        """Greet the (re)opened walkthrough and show where it stands."""
        proc, prog, company = self.procedure(state), state.progress(), state.active_company
        assert proc is not None and prog is not None and company is not None
        title = proc.title.get(state.lang)
        total = len(proc.steps)
        if prog.finished:
            return [Reply(self._finished_text(state, proc, prog, company.name)), self.checklist(state)]
        noted = self._settle_stated(state, proc, prog)
        at, state.start_at = state.start_at, ""
        begun = ""
        if at and at in {st.id for st in proc.steps} and not (prog.done or prog.skipped):
            prog.done = [st.id for st in proc.steps[: proc.index(at)]]
            prog.current = None
            begun = self._m(state, "started_at", n=proc.index(at) + 1)
        if not (prog.done or prog.skipped) and (noted or not prog.answers):
            intro = self._m(state, "begin", company=company.name, procedure=title, total=total)
            if noted:
                intro += "\n" + self._m(state, "stated_facts", facts=("; " if state.lang == "en" else "；").join(noted))
        elif begun:
            intro = self._m(state, "begin", company=company.name, procedure=title, total=total) + "\n" + begun
        else:
            step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
            n = self._number(proc, step) if step else total
            intro = self._m(state, "resume", company=company.name, procedure=title, n=n, total=total)
        return [Reply(intro), *self.present(state, now)]

    def _settle_stated(self, state: ConversationState, proc: Procedure, prog: Progress) -> list[str]:
        """Answer the choices that what the user said before the walkthrough opened settles
        (each clause: an option's words, or a yes/no about a choice's topic); the lines said."""
        said, state.stated = state.stated, []
        return [line for text in said for line in self._settle(state, proc, prog, text)]

    def _settle(self, state: ConversationState, proc: Procedure, prog: Progress, text: str) -> list[str]:
        """Answer the open choices that the statements of ``text`` settle; the lines said."""
        noted: list[str] = []
        for word in self.kb.walkthrough.both_ways:
            text = text.replace(word, " ")  # "珠海港湾优选进出口有限公司" says no direction
        for clause in default_cues().clauses(text):
            if is_question(clause):
                continue
            for choice in proc.choices:
                if choice.id in prog.answers or not matches(choice.when, prog.answers):
                    continue
                picked = self.match_option(choice, clause, None, min_len=2)
                option = picked[0] if picked else self.polar_option(choice, clause)
                if option is not None:
                    prog.answers[choice.id] = option.value
                    noted.append(f"{choice.title.get(state.lang)} = {option.label.get(state.lang)}")
        return noted

    # ------------------------------------------------------------------ showing a step
    def present(self, state: ConversationState, now: datetime) -> list[Reply]:
        """Show the current step, asking its choices and passing over steps that do not apply."""
        proc, prog = self.procedure(state), state.progress()
        assert proc is not None and prog is not None
        prog.updated_at = now
        replies: list[Reply] = []
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        # Steps before it that an answer made unnecessary (said with the start, or in passing)
        # are skipped as if reached, with their reason.
        upto = proc.index(step.id) if step is not None else len(proc.steps)
        for earlier in proc.steps[:upto]:
            if earlier.id in prog.done or earlier.id in prog.skipped or self.applicable(earlier, prog.answers):
                continue
            reason = earlier.skip_reason.get(state.lang) if earlier.skip_reason else ""
            n = self._number(proc, earlier)
            replies.append(Reply(self._m(state, "auto_skip", n=n, title=earlier.title.get(state.lang), reason=reason)))
            prog.skipped[earlier.id] = reason
            prog.auto_skipped.append(earlier.id)
        while step is not None:
            choice = self._pending_choice(proc, step, prog.answers)
            if choice is not None:
                prog.current = step.id
                state.awaiting = Awaiting(kind="choice", ref=choice.id)
                replies.append(self._choice_reply(state, proc, step, choice))
                return replies
            if not self.applicable(step, prog.answers):
                reason = step.skip_reason.get(state.lang) if step.skip_reason else ""
                n = self._number(proc, step)
                replies.append(Reply(self._m(state, "auto_skip", n=n, title=step.title.get(state.lang), reason=reason)))
                prog.skipped[step.id] = reason
                if step.id not in prog.auto_skipped:
                    prog.auto_skipped.append(step.id)
                prog.current = None
                # The next step not yet done or skipped, applicable or not: each one passed
                # over is said and recorded with its reason.
                step = next((s for s in proc.steps if s.id not in prog.done and s.id not in prog.skipped), None)
                continue
            prog.current = step.id
            state.awaiting = None
            replies.append(self.render(state, proc, step, prog))
            return replies
        return replies + self._finish(state)

    def _finish(self, state: ConversationState) -> list[Reply]:
        proc, prog, company = self.procedure(state), state.progress(), state.active_company
        assert proc is not None and prog is not None and company is not None
        prog.finished = True
        prog.current = None
        state.awaiting = None
        text = self._finished_text(state, proc, prog, company.name)
        needed = self.still_needed(proc, prog)
        if needed:
            lines = [self._m(state, "still_needed", days=self.kb.walkthrough.idle_nudge_days)]
            lines += [f"• {self._number(proc, st)}. {st.title.get(state.lang)}" for st in needed]
            text += "\n" + "\n".join(lines)
        return [Reply(text), self.checklist(state)]

    def what_next(self, state: ConversationState) -> list[Reply]:
        """ "然后呢", "下一步干啥" asked at a step, naming nothing done: what follows the open
        step on this company's path (the step is not marked done: nothing said it is)."""
        proc, prog, company = self.procedure(state), state.progress(), state.active_company
        assert proc is not None and prog is not None and company is not None
        title = proc.title.get(state.lang)
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        if prog.finished or step is None:
            return [Reply(self._m(state, "next_none", company=company.name, procedure=title)), self.checklist(state)]
        n = self._number(proc, step)
        later = [
            st
            for st in proc.steps[proc.index(step.id) + 1 :]
            if st.id not in prog.done and st.id not in prog.skipped and self.applicable(st, prog.answers)
        ]
        if later:
            text = self._m(
                state,
                "next_is",
                n=n,
                title=step.title.get(state.lang),
                m=self._number(proc, later[0]),
                next=later[0].title.get(state.lang),
            )
        else:
            text = self._m(state, "next_last", n=n, title=step.title.get(state.lang))
        return [Reply(text, self._step_buttons(state, proc, step, prog))]

    def _skip_reason(self, state: ConversationState, text: str, intent: str) -> str:
        """The reason typed at "为什么跳过": without the command said again ("跳过就行",
        "就跳过吧": no reason; "跳过，以后再办": 以后再办), so that no step reads "已跳过：跳过"."""
        if intent == "skip":
            return ""
        label = normalize(self._m(state, "buttons.skip"))
        folded = normalize(text.strip())
        if label not in folded:
            return text.strip()
        rest = folded.replace(label, " ").strip(" ，,。.!！~～、")
        return "" if len(_CJK_OR_WORD.findall(rest)) <= _FILLER_CHARS else rest

    def _finished_text(self, state: ConversationState, proc: Procedure, prog: Progress, company: str) -> str:
        """The end: all done, or how many were done and skipped (never "done or skipped" when
        the checklist beside it says 4 of 5); steps the answers made unnecessary said apart."""
        title = proc.title.get(state.lang)
        not_applicable = [st for st in proc.steps if not self.applicable(st, prog.answers)]
        skipped = [st for st in proc.steps if st.id in prog.skipped and st not in not_applicable]
        not_needed = self._m(state, "finished_not_needed", n=len(not_applicable)) if not_applicable else ""
        if not skipped:
            return self._m(state, "finished", company=company, procedure=title, not_needed=not_needed)
        done = sum(st.id in prog.done for st in proc.steps)
        return self._m(
            state,
            "finished_with_skips",
            company=company,
            procedure=title,
            done=done,
            skipped=len(skipped),
            not_needed=not_needed,
        )

    def still_needed(self, proc: Procedure, prog: Progress) -> list[Step]:
        """Steps skipped by hand that the manual requires (``skip_matters``), not those an
        answer makes unnecessary."""
        return [
            st
            for st in proc.steps
            if st.id in prog.skipped
            and st.id not in prog.auto_skipped
            and st.skip_matters
            and self.applicable(st, prog.answers)
        ]

    def _rederive(self, state: ConversationState, proc: Procedure, prog: Progress) -> list[str]:
        """After an answer changed: steps it skipped that apply again come back (said); those
        it makes unnecessary are skipped, with their reason, when the path reaches them."""
        back: list[str] = []
        for step in proc.steps:
            if step.id in prog.auto_skipped and self.applicable(step, prog.answers):
                prog.auto_skipped.remove(step.id)
                prog.skipped.pop(step.id, None)
                back.append(
                    self._m(state, "step_returns", n=self._number(proc, step), title=step.title.get(state.lang))
                )
        if back:
            prog.finished = False
            # The earliest step that came back is the one to do now, before the open one.
            first = next(
                (
                    st
                    for st in proc.steps
                    if st.id not in prog.auto_skipped
                    and st.id not in prog.done
                    and st.id not in prog.skipped
                    and self.applicable(st, prog.answers)
                ),
                None,
            )
            if first is not None and (prog.current is None or proc.index(first.id) < proc.index(prog.current)):
                prog.current = first.id
        return back

    def _choice_reply(self, state: ConversationState, proc: Procedure, step: Step, choice: Choice) -> Reply:
        head = self._m(
            state, "choice_head", n=self._number(proc, step), total=len(proc.steps), title=step.title.get(state.lang)
        )
        buttons = (*self._option_buttons(state, choice), self._button(state, "ask", f"{PREFIX}ask"))
        return Reply(f"{head}\n{choice.ask.get(state.lang)}", buttons)

    def _option_buttons(self, state: ConversationState, choice: Choice) -> tuple[Button, ...]:
        return tuple(Button(o.label.get(state.lang), f"{PREFIX}choice:{choice.id}:{o.value}") for o in choice.options)

    def render(self, state: ConversationState, proc: Procedure, step: Step, prog: Progress) -> Reply:
        """A step as one message: every section that has content, then phones, policy, source."""
        lang, answers = state.lang, prog.answers
        n = self._number(proc, step)
        head = self._m(state, "step_head", n=n, total=len(proc.steps), title=step.title.get(lang))
        if step.id in prog.done:
            head += self._m(state, "step_done_mark")
        lines = [head]
        chosen = [
            f"{proc.choice(c).title.get(lang)} = {opt.label.get(lang)}"
            for c in step.asks
            if c in answers and (opt := proc.choice(c).option(answers[c])) is not None
        ]
        if chosen:
            lines.append(self._m(state, "sec_chosen") + ("; " if lang == "en" else "；").join(chosen))
        sections = (("sec_do", step.do, "• "), ("sec_where", step.where, "• "), ("sec_bring", step.bring, "☐ "),
                    ("sec_pitfalls", step.pitfalls, "⚠ "), ("sec_wait", step.wait, "⏳ "))  # fmt: skip
        for key, items, bullet in sections:
            shown = _lines(items, answers, lang)
            if shown:
                lines.append(self._m(state, key))
                lines.extend(bullet + line for line in shown)
        phones = []
        for entry_id in step.call:
            entry = self.kb.get(entry_id)
            if isinstance(entry, HotlineEntry):
                name = entry.en.title or entry.title if lang == "en" else entry.title
                phones.append(
                    f"{name}：{'、'.join(entry.phones)}" if lang != "en" else f"{name}: {', '.join(entry.phones)}"
                )
        if phones:
            lines.append(self._m(state, "sec_call"))
            lines.extend("☎ " + p for p in phones)
        if self.step_note is not None and prog.current == step.id and (card := self.step_note(state)):
            lines.append(card)
        if step.policy:
            note = self.kb.policy_notes[step.policy]
            lines.append("ℹ️ " + (note.text_en if lang == "en" else note.text))
        label = self.kb.manuals[proc.manual]
        cite = f"{label.label_en if lang == 'en' else label.label} {step.section}"
        lines.append(f"Source: {cite}" if lang == "en" else f"来源：{cite}")
        return Reply("\n".join(lines), self._step_buttons(state, proc, step, prog))

    def _step_buttons(
        self, state: ConversationState, proc: Procedure, step: Step, prog: Progress
    ) -> tuple[Button, ...]:
        buttons = [self._button(state, "done", f"{PREFIX}done")]
        if proc.index(step.id) > 0:
            buttons.append(self._button(state, "back", f"{PREFIX}back"))
        buttons.append(self._button(state, "skip", f"{PREFIX}skip"))
        buttons += [
            Button(ms.label.get(state.lang), f"{PREFIX}ms:{ms.id}")
            for ms in step.milestones
            if matches(ms.when, prog.answers)
        ]
        region = state.walkthrough or ""
        if self.step_forms is not None and self.step_forms(state, region, step.id, prog.answers):
            buttons.append(Button(self.msg.get("fm.buttons.step_forms", state.lang), f"fm:step:{region}:{step.id}"))
        buttons.append(self._button(state, "ask", f"{PREFIX}ask"))
        buttons.append(Button(self.msg.get("buttons.human", state.lang), "human"))
        return tuple(buttons)

    def checklist(self, state: ConversationState) -> Reply:
        """Done / current / pending / skipped / not needed, one line a step."""
        proc, prog, company = self.procedure(state), state.progress(), state.active_company
        if proc is None or prog is None or company is None:
            return Reply(self._m(state, "no_walkthrough"), (self.msg_button(state, "start", f"{PREFIX}start"),))
        lang = state.lang
        lines = [
            self._m(
                state,
                "progress_head",
                company=company.name,
                procedure=proc.title.get(lang),
                done=len([s for s in proc.steps if s.id in prog.done]),
                total=len(proc.steps),
            )
        ]
        for i, step in enumerate(proc.steps, 1):
            title = f"{i}. {step.title.get(lang)}"
            if step.id in prog.done:
                lines.append(f"{self._m(state, 'mark_done')} {title}")
            elif step.id in prog.skipped and step.id not in prog.auto_skipped:
                reason = prog.skipped[step.id]
                sep = ": " if lang == "en" else "："
                note = self._m(state, "note_skipped", reason=f"{sep}{reason}" if reason else "")
                lines.append(f"{self._m(state, 'mark_skipped')} {title}{note}")
            elif not self.applicable(step, prog.answers):
                reason = step.skip_reason.get(lang).rstrip("。.") if step.skip_reason else ""
                lines.append(f"{self._m(state, 'mark_na')} {title}{self._m(state, 'note_na', reason=reason)}")
            elif step.id == prog.current and not prog.finished:
                lines.append(f"{self._m(state, 'mark_current')} {title}{self._m(state, 'note_current')}")
            else:
                lines.append(f"{self._m(state, 'mark_pending')} {title}")
        buttons: tuple[Button, ...] = ()
        if not prog.finished:
            buttons = (self._button(state, "continue", f"{PREFIX}resume"),)
        return Reply("\n".join(lines), buttons)

    def msg_button(self, state: ConversationState, key: str, payload: str) -> Button:
        return Button(self.msg.get(f"buttons.{key}", state.lang), payload)

    # ------------------------------------------------------------------ moving
    def done(self, state: ConversationState, now: datetime) -> list[Reply]:
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or prog.finished:
            return self.start(state, now)
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        # Done while its question is open ("注册好了" before saying whether there is a card):
        # the step is done all the same; a later step that needs the answer asks again.
        if step is not None:
            if step.id not in prog.done:
                prog.done.append(step.id)
            prog.skipped.pop(step.id, None)
        state.awaiting = None
        prog.current = None
        return self.present(state, now)

    def done_from_text(self, state: ConversationState, text: str, now: datetime) -> list[Reply]:
        """ "X弄好了": the step the text names by its words (``says``, its title) is done; with
        none named, or the open one, the open step is."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None:
            return self.done(state, now)
        step = self._named_step(proc, text)
        if step is None or step.id == prog.current or prog.finished:
            return self.done(state, now)
        if step.id not in prog.done:
            prog.done.append(step.id)
        prog.skipped.pop(step.id, None)
        n, title = self._number(proc, step), step.title.get(state.lang)
        return [Reply(self._m(state, "step_noted_done", n=n, title=title)), *self.present(state, now)]

    @staticmethod
    def _named_step(proc: Procedure, text: str) -> Step | None:
        """The step ``text`` names by its words (``says``, its title), the longest found."""
        folded = normalize(text).replace(" ", "").lower()
        named: tuple[int, Step] | None = None
        for step in proc.steps:
            words = (*step.says, step.title.get("zh"))
            score = max((len(w) for w in words if w and normalize(w).replace(" ", "").lower() in folded), default=0)
            if score and (named is None or score > named[0]):
                named = (score, step)
        return named[1] if named else None

    def back(self, state: ConversationState, now: datetime, said: str = "") -> list[Reply]:
        """The step before the open one, or the one ``said`` names ("回到本地备案那步")."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None:
            return self.start(state, now)
        named = self._named_step(proc, said) if said else None
        if named is not None and named.id != prog.current:
            prog.current = named.id
            prog.finished = False
            prog.skipped.pop(named.id, None)
            return self.present(state, now)
        at = proc.index(prog.current) if prog.current else len(proc.steps)
        earlier = [s for s in proc.steps[:at] if self.applicable(s, prog.answers)]
        if not earlier:
            return [Reply(self._m(state, "at_first")), *self.present(state, now)]
        prog.current = earlier[-1].id
        prog.finished = False
        return self.present(state, now)

    def skip(self, state: ConversationState, now: datetime, said: str = "") -> list[Reply]:
        """Skip the open step, or the one ``said`` names; one that matters asks why, unless
        ``said`` (the message that asked to skip) gives a reason beside its command ("先不弄了，
        以后再办，同事出差了")."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or prog.finished:
            return self.start(state, now)
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        named = self._named_step(proc, said) if said else None
        if named is not None and named.id not in prog.done and named.id not in prog.skipped:
            step = named  # "本地备案跳过": that step, whichever is open
        if step is None:
            return self.present(state, now)
        clauses = default_cues().clauses(said)
        if step.skip_matters and len(clauses) >= 2:
            return self._skip(state, step.id, "，".join(c.strip() for c in clauses[1:]), now, warn=True)
        if step.skip_matters:
            state.awaiting = Awaiting(kind="skip_reason", ref=step.id)
            text = self._m(state, "ask_skip_reason", n=self._number(proc, step), title=step.title.get(state.lang))
            buttons = tuple(
                Button(r.get(state.lang), f"{PREFIX}skipwhy:{i}")
                for i, r in enumerate(self.kb.walkthrough.skip_reasons)
            )
            return [Reply(text, buttons)]
        return self._skip(state, step.id, "", now, warn=False)

    def _skip(self, state: ConversationState, step_id: str, reason: str, now: datetime, *, warn: bool) -> list[Reply]:
        proc, prog = self.procedure(state), state.progress()
        assert proc is not None and prog is not None
        step = proc.step(step_id)
        state.awaiting = None
        prog.skipped[step_id] = reason[:100]
        if step_id in prog.done:
            prog.done.remove(step_id)
        text = self._m(state, "skipped", n=self._number(proc, step), title=step.title.get(state.lang))
        if warn and step.skip_warning:
            text += "\n" + self._m(state, "skip_warning", warning=step.skip_warning.get(state.lang))
        prog.current = None
        return [Reply(text), *self.present(state, now)]

    def milestone(self, state: ConversationState, milestone_id: str, now: datetime) -> list[Reply]:
        proc, prog, company = self.procedure(state), state.progress(), state.active_company
        if proc is None or prog is None or company is None or prog.current is None:
            return [Reply(self._m(state, "milestone_unknown"))]
        step = proc.step(prog.current)
        ms = next((m for m in step.milestones if m.id == milestone_id and matches(m.when, prog.answers)), None)
        if ms is None:
            return [Reply(self._m(state, "milestone_unknown"))]
        prog.milestones[ms.id] = now
        day = _local_date(now)
        rule = ms.deadline or (ms.reminders[0] if ms.reminders else None)
        deadline = rule.after(day) if rule else day
        text = ms.confirm.get(state.lang).format(
            date=day.isoformat(), deadline=deadline.isoformat(), company=company.name
        )
        return [Reply(text, self._step_buttons(state, proc, step, prog))]

    def restart(self, state: ConversationState, confirmed: bool | None, now: datetime) -> list[Reply]:
        proc, company = self.procedure(state), state.active_company
        if proc is None or company is None or state.walkthrough is None:
            return [Reply(self._m(state, "no_walkthrough"), (self.msg_button(state, "start", f"{PREFIX}start"),))]
        title = proc.title.get(state.lang)
        if confirmed is None:
            state.awaiting = Awaiting(kind="confirm_restart")
            buttons = (
                self._button(state, "confirm_restart", f"{PREFIX}restart:yes"),
                self._button(state, "cancel", f"{PREFIX}restart:no"),
            )
            return [Reply(self._m(state, "confirm_restart", company=company.name, procedure=title), buttons)]
        state.awaiting = None
        if not confirmed:
            return [Reply(self._m(state, "restart_cancelled")), *self.present(state, now)]
        company.progress[state.walkthrough] = Progress()
        return [Reply(self._m(state, "restarted")), *self.present(state, now)]

    # ------------------------------------------------------------------ choices
    def answer_choice(self, state: ConversationState, choice_id: str, value: str, now: datetime) -> list[Reply]:
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or choice_id not in {c.id for c in proc.choices}:
            return []
        choice = proc.choice(choice_id)
        option = choice.option(value)
        if option is None:
            return []
        old = prog.answers.get(choice_id)
        prog.answers[choice_id] = value
        self._drop_stale_answers(proc, prog)
        returned = [Reply(line) for line in self._rederive(state, proc, prog)]
        if state.awaiting is not None and state.awaiting.kind == "choice" and state.awaiting.ref == choice_id:
            state.awaiting = None
            prog.finished = False
            return [*returned, *self.present(state, now)]
        if old is not None and old != value:
            old_label = choice.option(old)
            text = self._m(
                state,
                "choice_changed",
                choice=choice.title.get(state.lang),
                old=old_label.label.get(state.lang) if old_label else old,
                new=option.label.get(state.lang),
            )
        else:
            text = self._m(
                state, "choice_set", choice=choice.title.get(state.lang), option=option.label.get(state.lang)
            )
        if prog.finished:
            prog.finished = self._next_open(proc, prog) is None
        return [Reply(text), *returned, *self.present(state, now)]

    @staticmethod
    def _drop_stale_answers(proc: Procedure, prog: Progress) -> None:
        """Forget answers to choices that no longer apply (the delivery of an offline card)."""
        changed = True
        while changed:
            changed = False
            for choice in proc.choices:
                if choice.id in prog.answers and not matches(choice.when, prog.answers):
                    del prog.answers[choice.id]
                    changed = True

    @staticmethod
    def match_option(
        choice: Choice, text: str, nlu: Understanding | None, min_len: int = 1
    ) -> tuple[Option, int] | None:
        """The option a text picks: longest matching phrase, else an NLU entity; None if tied."""
        low = text.lower()
        scored: list[tuple[int, Option]] = []
        for option in choice.options:
            # "我们是进口不是出口": a phrase said after a negation does not pick its option.
            score = max(
                (len(s) for s in option.says if len(s) >= min_len and _said_not_negated(s.lower(), low)), default=0
            )
            # The NLU's entity when the option's words are not there negated ("不算代理企业").
            negated = any(len(s) >= min_len and s.lower() in low for s in option.says)
            entity = nlu is not None and any(nlu.entities.get(k) == v for k, v in option.entity.items())
            if not score and entity and not negated:
                score = 1
            if score:
                scored.append((score, option))
        if not scored and len(choice.options) == 2:
            # Of two options, one said only to be rejected ("加密机太贵了 不考虑"): the other.
            present = [o for o in choice.options if any(len(s) >= min_len and s.lower() in low for s in o.says)]
            if len(present) == 1:
                other = next(o for o in choice.options if o is not present[0])
                return other, 1
        if not scored:
            return None
        scored.sort(key=lambda p: -p[0])
        if len(scored) > 1 and scored[0][0] == scored[1][0]:
            return None
        return scored[0][1], scored[0][0]

    def choice_from_text(
        self, state: ConversationState, text: str, nlu: Understanding | None, now: datetime
    ) -> list[Reply] | None:
        """The pending choice answered in words ("线下", "没有卡", "是的"), or None."""
        proc = self.procedure(state)
        if proc is None or state.awaiting is None or state.awaiting.kind != "choice":
            return None
        choice = proc.choice(state.awaiting.ref)
        if is_question(text) or default_cues().compares(text):
            # "代理企业是什么意思", "Web版和MQ版有什么区别": asked about, not chosen; but "卡？啥卡
            # 我们没有这东西" asks back, then answers.
            answered = self._answer_after_asking(choice, text)
            if answered is None:
                return None
            return self._chosen(state, proc, choice, answered, text, now)
        picked = self.match_option(choice, text, nlu)
        option = (
            picked[0] if picked else (self._abbreviated_option(choice, text) or self._misspelt_option(choice, text))
        )
        if option is None:
            option = self.polar_option(choice, text, asked=True)
        if option is None and nlu is not None and nlu.intent in ("affirm", "deny"):
            option = next((o for o in choice.options if o.reply == nlu.intent), None)
        if option is None:
            return None
        return self._chosen(state, proc, choice, option, text, now)

    def _chosen(
        self, state: ConversationState, proc: Procedure, choice: Choice, option: Option, text: str, now: datetime
    ) -> list[Reply]:
        prog = state.progress()
        if prog is not None:
            # "我们走MQ，用卡签名": the rest of the message may answer the choices after it.
            prog.answers[choice.id] = option.value
            self._settle(state, proc, prog, text)
        return self.answer_choice(state, choice.id, option.value, now)

    def note_in_passing(self, state: ConversationState, text: str, nlu: Understanding | None) -> None:
        """What a statement said beside "done" answers: the open question ("我们是电商企业，
        这个备案做完了"), and choices not yet asked."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None:
            return
        if state.awaiting is not None and state.awaiting.kind == "choice":
            choice = proc.choice(state.awaiting.ref)
            picked = self.match_option(choice, text, nlu)
            option = picked[0] if picked else self.polar_option(choice, text)
            if option is not None:
                prog.answers[choice.id] = option.value
        self._settle(state, proc, prog, text)
        self._drop_stale_answers(proc, prog)

    def _answer_after_asking(self, choice: Choice, text: str) -> Option | None:
        """The answer in the statements that end a message which only asks back first ("卡？
        啥卡 我们没有这东西"): an option's words, or a yes/no about the choice's topic named
        anywhere in it. None when the message ends asking, asks more than that, or compares."""
        cues = default_cues()
        clauses = cues.clauses(text)
        if len(clauses) < 2 or is_question(clauses[-1]) or cues.compares(text):
            return None
        if any(len(c.strip()) > _ASKED_BACK for c in clauses if is_question(c)):
            return None  # "领卡是谁都能去领吗 我想让司机去拿": a question, with its context
        said = " ".join(c for c in clauses if not is_question(c))
        picked = self.match_option(choice, said, None, min_len=2)
        if picked:
            return picked[0]
        return self.polar_option(choice, said, about=text)

    @staticmethod
    def _abbreviated_option(choice: Choice, text: str) -> Option | None:
        """A short reply that is part of one option's label or words ("电商" for 电商企业,
        "web" for Web版), when it is part of no other option's."""
        word = normalize(text).strip(" ，,。.!！~～的吧呀啊哈").lower()
        if not 2 <= len(word) <= _ABBREVIATION:
            return None
        holders = [o for o in choice.options if any(word in w.lower() for w in (o.label.zh, o.label.en, *o.says) if w)]
        return holders[0] if len(holders) == 1 else None

    @staticmethod
    def _misspelt_option(choice: Choice, text: str) -> Option | None:
        """A short reply one character off one option's words ("客服端" for 客户端), and off no
        other option's."""
        word = normalize(text).strip(_PARTICLES).lower()
        if not _MISSPELT_MIN <= len(word) <= _ABBREVIATION:
            return None
        close = [
            o
            for o in choice.options
            if any(
                len(w) >= _MISSPELT_MIN and Levenshtein.distance(word, w.lower()) == 1
                for w in (o.label.zh, *o.says)
                if w
            )
        ]
        return close[0] if len(close) == 1 else None

    def polar_option(self, choice: Choice, text: str, asked: bool = False, about: str = "") -> Option | None:
        """A yes/no choice answered by a sentence about its topic: "卡还没办呢" is no,
        "海关编码我们早就有了" is yes (a negation wins: "还没有" has 有 in it). ``asked``: the
        choice is the question just asked, so a bare "没有哦" answers it; ``about``: the text
        the topic may be named in, when wider than ``text``."""
        folded = f" {normalize(text).lower()} "
        settings = self.kb.walkthrough
        # "没有哦", "有的呀", "不是啦": to the question asked, a bare yes or no (nothing but
        # yes/no words and particles) is about its topic.
        rest = folded
        for word in sorted({*settings.negations, *settings.affirmations}, key=len, reverse=True):
            rest = rest.replace(word.strip(), "")
        bare = asked and not rest.strip(_PARTICLES)
        topical = f" {normalize(about).lower()} " if about else folded  # where the topic may be named
        if not bare and not any(normalize(t).lower() in topical for t in choice.topic):
            return None
        for phrase in settings.not_negations:
            folded = folded.replace(phrase, " ")  # "不好意思说错了，我们其实有卡"
        if any(w in folded for w in settings.negations):
            reply = "deny"
        elif any(w in folded for w in settings.affirmations):
            reply = "affirm"
        else:
            return None
        return next((o for o in choice.options if o.reply == reply), None)

    def says_step_held(self, state: ConversationState, text: str) -> bool:
        """Whether ``text`` says the result of a step it names is held already, without a
        negation or a question ("海关注册登记我们几年前就有了 一直在用"): that step is done."""
        proc = self.procedure(state)
        if proc is None or is_question(text) or self._named_step(proc, text) is None:
            return False
        settings = self.kb.walkthrough
        folded = f" {normalize(text).lower()} "
        for phrase in settings.not_negations:
            folded = folded.replace(phrase, " ")
        if any(w in folded for w in ("没", "未", "还不", " not ", "n't")):
            return False
        return any(w in folded for w in settings.held)

    def corrects(self, text: str) -> bool:
        """Whether ``text`` says it corrects something said before (其实, 说错了, actually)."""
        low = text.lower()
        return any(cue in low for cue in self.kb.walkthrough.correction_cues)

    def change_from_text(
        self, state: ConversationState, text: str, nlu: Understanding | None, now: datetime
    ) -> list[Reply] | None:
        """An earlier (or later) choice stated in passing: "其实我们是线下办卡"; not a question
        or a comparison ("加签用卡好还是加密机好")."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or is_question(text) or default_cues().compares(text):
            return None
        intent = nlu.intent if nlu else ""
        cued = (
            intent == "inform"
            or any(cue in text.lower() for cue in self.kb.walkthrough.change_cues)
            or self.corrects(text)
        )
        # A short statement that names an option settles its choice ("我们在横琴", "做1210保税");
        # a longer one only with a word that says it tells a fact ("其实我们是线下办卡").
        if not cued and len(text.strip()) > _SHORT_STATEMENT:
            return self._noted(state, proc, prog, text, now)
        best: list[tuple[int, Choice, Option]] = []
        for choice in proc.choices:
            if not matches(choice.when, prog.answers):
                continue
            picked = self.match_option(choice, text, nlu, min_len=2)
            # A yes/no said about a topic answers its question once; changing it takes a cue.
            polar = None if picked or (choice.id in prog.answers and not cued) else self.polar_option(choice, text)
            if picked:
                best.append((picked[1], choice, picked[0]))
            elif polar is not None:
                best.append((1, choice, polar))  # "法人卡之前就办过了": below any option's words
        if not best:
            return None
        best.sort(key=lambda t: -t[0])
        if len(best) > 1 and best[0][0] == best[1][0]:
            return None
        _, choice, option = best[0]
        if prog.answers.get(choice.id) != option.value and choice.id not in prog.answers:
            # "跨境工业区，1210出口": the other open choices the message settles, too.
            prog.answers[choice.id] = option.value
            self._settle(state, proc, prog, text)
            del prog.answers[choice.id]
        if prog.answers.get(choice.id) == option.value:
            text = self._m(
                state, "choice_set", choice=choice.title.get(state.lang), option=option.label.get(state.lang)
            )
            return [Reply(text), *self.present(state, now)]
        return self.answer_choice(state, choice.id, option.value, now)

    def _noted(
        self, state: ConversationState, proc: Procedure, prog: Progress, text: str, now: datetime
    ) -> list[Reply] | None:
        """A longer statement that answers choices not yet asked ("我人在宝鸡，打算直接去宝鸡的
        建行网点办" while asked about the card): noted, and what was open asked again."""
        noted = self._settle(state, proc, prog, text)
        if not noted:
            return None
        joiner = "; " if state.lang == "en" else "；"
        return [Reply(self._m(state, "stated_facts", facts=joiner.join(noted))), *self.present(state, now)]

    # ------------------------------------------------------------------ companies
    def companies(self, state: ConversationState) -> list[Reply]:
        if not state.companies:
            return [Reply(self._m(state, "no_companies"), (self.msg_button(state, "start", f"{PREFIX}start"),))]
        current = state.active_company.name if state.active_company else "-"
        buttons = tuple(Button(c.name, f"{PREFIX}company:{i}") for i, c in enumerate(state.companies))
        return [
            Reply(
                self._m(state, "companies", company=current),
                (*buttons, self._button(state, "new_company", f"{PREFIX}company:new")),
            )
        ]

    def set_company(self, state: ConversationState, name: str | None, now: datetime) -> list[Reply]:
        """Name (or pick) the active company; continues the walkthrough that asked for it."""
        placeholder = name is None
        if name is None:
            base = self._m(state, "default_company")
            taken = {c.name for c in state.companies}
            name = (
                base if base not in taken else next(f"{base}{i}" for i in range(2, 1000) if f"{base}{i}" not in taken)
            )
        name = " ".join(name.split())
        if not (2 <= len(name) <= _MAX_COMPANY) or is_question(name):
            return [Reply(self._m(state, "company_invalid"), (self._button(state, "later", f"{PREFIX}company:later"),))]
        index = next((i for i, c in enumerate(state.companies) if c.name == name), None)
        if index is None:
            state.companies.append(Company(name=name, placeholder=placeholder))
            index = len(state.companies) - 1
        return self.switch_company(state, index, now, said="company_set")

    def note_company(self, state: ConversationState, text: str) -> str | None:
        """A company named in any message ("我们是西安星河贸易有限公司，请问…") becomes the one
        the user acts for, when none is yet (or only "我的企业" for now); its name, if taken."""
        company = state.active_company
        if company is not None and not company.placeholder:
            return None
        if state.awaiting is not None and state.awaiting.kind == "company_name":
            return None  # the prompt's own answer is read there
        name = self.embedded_company(text)
        if name is None or any(c.name == name for c in state.companies):
            return None
        if company is not None:
            company.name, company.placeholder = name, False
        else:
            state.companies.append(Company(name=name))
            state.company = len(state.companies) - 1
        return name

    def rename_placeholder(
        self, state: ConversationState, text: str, now: datetime, nlu: Understanding | None = None
    ) -> list[Reply] | None:
        """The name of a company named "我的企业" for now, given later in passing
        ("公司叫咸阳渭水跨境贸易有限公司"), or alone right after the name was invited ("秦味坊":
        a proper name the knowledge base knows nothing of); None when the text gives none."""
        invited, state.name_invited = state.name_invited, False
        company = state.active_company
        if (
            company is None
            or not company.placeholder
            or (state.awaiting is not None and state.awaiting.kind != "choice")
        ):
            return None
        if (
            invited
            and len(normalize(text)) <= _DEFER_MAX
            and any(w in normalize(text).lower() for w in self.kb.walkthrough.name_later)
        ):
            # "先不填", "名字等下再说": the old button's words, answered as it was.
            return [Reply(self._m(state, "name_deferred")), *(self.present(state, now) if self.active(state) else [])]
        plain = nlu.plain.strip() if nlu is not None and nlu.plain.strip() else text
        spelt = self.company_name_in(plain)
        name = _as_typed(spelt, plain, text) if spelt else None
        if name is None:
            # "我司名称：X有限公司。": the name with little else, none of it a question.
            embedded = self.embedded_company(text)
            rest = text.replace(embedded, "") if embedded else ""
            if embedded and len(rest.strip(_NAME_PUNCT)) <= _NAMING_REST and not is_question(rest):
                name = embedded
        if name is None and invited and nlu is not None and self._bare_name(state, text, nlu):
            name = self._without_leads(text)
        if name is None or not 2 <= len(name) <= _MAX_COMPANY or any(c.name == name for c in state.companies):
            return None
        if not self._more_than_options(state, name):
            return None  # "不是代理企业", "我们是代理公司" answer a question; "某某物流有限公司" is a name
        company.name, company.placeholder = name, False
        replies = [Reply(self._m(state, "company_renamed", company=name))]
        proc, prog = self.procedure(state), state.progress()
        if proc is not None and prog is not None:
            # "西安秦风电子商务有限公司，我们还没有卡": the name, and the rest answers the question.
            noted = self._settle(state, proc, prog, text.replace(name, " "))
            if noted:
                replies.append(Reply(self._m(state, "stated_facts", facts="；".join(noted))))
        return replies + (self.present(state, now) if self.active(state) else [])

    def _without_leads(self, text: str) -> str:
        """``text`` without the words before a name ("叫长安优选" -> 长安优选)."""
        name = text.strip()
        folded = normalize(name)
        lead = next((w for w in self._name_leads if folded.startswith(w) and len(w) < len(folded)), "")
        return name[len(lead) :].strip() if len(folded) == len(name) else name

    def _bare_name(self, state: ConversationState, text: str, nlu: Understanding) -> bool:
        """Whether ``text`` alone is a proper name: short, Chinese, no sentence words, no
        option, no command, and about nothing the knowledge base answers."""
        squashed = normalize(text).replace(" ", "")
        if not (2 <= len(squashed) <= _BARE_NAME_MAX and _CJK_ONLY.fullmatch(squashed)):
            return False
        if nlu.intent.startswith(FAQ_INTENT) and nlu.confidence >= _UNKNOWN_TOPIC and not _place_and_name(squashed):
            return False  # "统一版", "单一窗口": a topic
        return self._names_a_company(state, text, nlu)

    def switch_company(
        self, state: ConversationState, index: int, now: datetime, said: str = "company_switched"
    ) -> list[Reply]:
        if not 0 <= index < len(state.companies):
            return self.companies(state)
        state.company = index
        state.awaiting = None
        replies = [Reply(self._m(state, said, company=state.companies[index].name))]
        if state.walkthrough:
            replies += self._open(state, now)
        return replies

    # ------------------------------------------------------------------ interruptions
    def resume_offer(self, state: ConversationState) -> Reply | None:
        """After an answered question: back to the pending choice or the current step."""
        proc, prog = self.procedure(state), state.progress()
        if proc is None or prog is None or prog.finished:
            return None
        if state.awaiting is not None and state.awaiting.kind == "choice":
            choice = proc.choice(state.awaiting.ref)
            text = self._m(state, "offer_choice", ask=choice.ask.get(state.lang))
            return Reply(text, self._option_buttons(state, choice))
        step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
        if step is None:
            return None
        text = self._m(state, "offer_resume", n=self._number(proc, step), title=step.title.get(state.lang))
        return Reply(
            text,
            (self._button(state, "resume", f"{PREFIX}resume"), self._button(state, "progress", f"{PREFIX}progress")),
        )

    def resume(
        self, state: ConversationState, now: datetime, company: int | None = None, region: str | None = None
    ) -> list[Reply]:
        if company is not None and 0 <= company < len(state.companies):
            state.company = company
        if region in self.kb.procedures:
            state.walkthrough = region
            state.region = region
        if self.procedure(state) is None or state.active_company is None:
            return self.start(state, now)
        state.awaiting = None
        return self.present(state, now)

    # ------------------------------------------------------------------ buttons
    def button(self, state: ConversationState, payload: str, now: datetime) -> list[Reply] | None:
        """Handle a ``wt:`` button; None when the payload is stale or malformed."""
        state.name_invited = False  # a button answered instead of the name
        head, _, rest = payload.removeprefix(PREFIX).partition(":")
        if head == "start":
            return self.start(state, now)
        if head == "region" and rest in self.kb.procedures:
            return self.start(state, now, rest)
        if head == "from":
            region, _, step_id = rest.partition(":")
            if region not in self.kb.procedures:
                return None
            state.start_at = step_id
            return self.start(state, now, region)
        if head == "switch" and rest in self.kb.procedures:
            state.awaiting = None
            state.walkthrough = rest
            return self.start(state, now, rest)
        if head == "stay":
            state.awaiting = None
            current = self._region_name(state, state.walkthrough) if state.walkthrough else ""
            return [Reply(self._m(state, "region_kept", current=current)), *self.resume(state, now)]
        if head == "company":
            if rest == "later":
                if state.active_company is not None and state.active_company.placeholder:
                    # A 先不填 button of a message sent before the walkthrough opened at once.
                    return [Reply(self._m(state, "name_deferred")), *self.resume(state, now)]
                return self.set_company(state, None, now)
            if rest == "new":
                state.awaiting = Awaiting(kind="company_name", ref="new")
                return [Reply(self._m(state, "ask_company"), (self._button(state, "later", f"{PREFIX}company:later"),))]
            if _is_index(rest):
                return self.switch_company(state, int(rest), now)
            return None
        if head == "reminders" and rest in {"on", "off"}:
            return self.set_reminders(state, rest == "on")
        if head == "redo":
            # A skipped step the manual requires, done now (from its reminder).
            company, _, tail = rest.partition(":")
            region, _, step_id = tail.partition(":")
            if not _is_index(company) or int(company) >= len(state.companies) or region not in self.kb.procedures:
                return None
            state.company, state.walkthrough, state.region = int(company), region, region
            prog = state.progress()
            proc = self.kb.procedures[region]
            if prog is None or step_id not in {st.id for st in proc.steps}:
                return None
            prog.skipped.pop(step_id, None)
            prog.finished, prog.current, state.awaiting = False, step_id, None
            return self.present(state, now)
        if self.procedure(state) is None or state.active_company is None:
            return self.start(state, now) if head in {"done", "back", "skip", "resume", "progress"} else None
        if head == "choice":
            choice_id, _, value = rest.partition(":")
            return self.answer_choice(state, choice_id, value, now) or None
        if head == "done":
            return self.done(state, now)
        if head == "back":
            return self.back(state, now)
        if head == "skip":
            return self.skip(state, now)
        if head == "skipwhy" and _is_index(rest) and state.awaiting and state.awaiting.kind == "skip_reason":
            reasons = self.kb.walkthrough.skip_reasons
            if int(rest) >= len(reasons):
                return None
            # The first two reasons (done already, an agent does it) need no warning.
            return self._skip(state, state.awaiting.ref, reasons[int(rest)].get(state.lang), now, warn=int(rest) >= 2)
        if head == "ms":
            return self.milestone(state, rest, now)
        if head == "ask":
            return [Reply(self._m(state, "ask_question"))]
        if head == "resume":
            company, _, region = rest.partition(":")
            return self.resume(state, now, int(company) if _is_index(company) else None, region or None)
        if head == "progress":
            return [self.checklist(state)]
        if head == "restart":
            return self.restart(state, rest == "yes", now)
        return None

    # ------------------------------------------------------------------ text while waiting
    def embedded_company(self, text: str) -> str | None:
        """A company's name inside a longer message ("我们是西安星河贸易有限公司，还没有卡"): a run
        that ends with a company mark (有限公司, 厂), is not a description ("一家做母婴的小公司")
        and has no sentence words; the longest such run."""
        settings = self.kb.walkthrough
        best: str | None = None
        pieces = [text, *default_cues().clauses(text)]
        for piece in pieces:
            runs = [m.group(0) for m in _EMBEDDED_NAME.finditer(piece)]
            # "公司是拱北的珠海粤通报关服务有限公司": the name after its last 的/是/叫/这边.
            # The tail when it is a name itself, not the run with the words before it.
            tails = [_NAME_AFTER.split(run)[-1] for run in runs]
            ends = [tail if self.company_name_in(tail) else run for run, tail in zip(runs, tails, strict=True)]
            for candidate in (piece.strip(), *ends):
                name = self.company_name_in(candidate)
                if name is None or len(name) < 3 or any(w in name.lower() for w in settings.not_names):
                    continue
                if not _ENDS_WITH_MARK.search(name) and not _NAMING.match(candidate.strip()):
                    continue  # "X Co., Ltd. and want to onboard": a name ends with its mark
                if best is None or len(name) > len(best):
                    best = name
        return best

    def company_name_in(self, text: str) -> str | None:
        """The company name a reply gives ("公司叫咸阳渭水跨境贸易有限公司", "您好～X有限公司"):
        the text without its leading words, when what is left has a company mark and no
        sentence words; None otherwise."""
        name = text.strip()
        changed = True
        while changed:
            changed = False
            name = name.lstrip(" ～~,，。!！:：、")
            folded = normalize(name)
            for lead in self._name_leads:
                if folded.startswith(lead):
                    name = name[len(lead) :]
                    changed = True
                    break
        naming = _NAMING.match(normalize(name))  # "我们公司名字叫长安优选"
        if naming is not None:
            name = name[naming.end() :]
        name = name.strip(" ～~,，。!！:：、")  # not "." : "Co., Ltd."
        if not name or is_question(name):
            return None
        # "X有限公司（简称Y）", "X有限公司 统一社会信用代码…": the name ends with its last mark
        # (the rest of "X有限公司，我们有卡" is read as what it says, elsewhere).
        marks = list(_MARK.finditer(name))
        if marks and _AFTER_THE_NAME.match(name[marks[-1].end() :]):
            name = name[: marks[-1].end()]
        if self._marked_company(name):
            return name
        name = name.rstrip(_PARTICLES) or name  # "就叫秦岭之光吧"
        # "公司叫秦味坊": named as a name, it needs no mark (but no sentence words either).
        named = _NAMING.search(normalize(text)[:_NAMING_REACH]) is not None
        folded = f" {normalize(name)} "
        plain = not any(word in folded for word in self.kb.walkthrough.sentence_words)
        return name if named and plain and len(name) <= _NAMED_MAX and not _describes(name) else None

    @cached_property
    def _name_leads(self) -> list[str]:
        """The words before a name ("我们公司叫", "您好"), folded, longest first."""
        return sorted({normalize(lead) for lead in self.kb.walkthrough.name_leads}, key=len, reverse=True)

    def _marked_company(self, text: str) -> bool:
        """A company name by its mark (有限公司, 厂, Ltd) in a text without sentence or command
        words ("切换到乙公司" is a command)."""
        settings = self.kb.walkthrough
        folded = f" {normalize(text)} "
        if any(word in folded for word in settings.sentence_words):
            return False
        # A Chinese name ends with its mark: "企业类型备案也交咧" has 企业 but names no company.
        end = folded.rstrip(" .。")
        return any(end.endswith(mark) if _CJK_MARK.match(mark) else mark in folded for mark in settings.company_marks)

    def _is_option_text(self, state: ConversationState, text: str) -> bool:
        """Whether ``text`` says an option of the procedure (有卡, 线下, 不是代理企业)."""
        proc = self.procedure(state)
        squashed = normalize(text).replace(" ", "")
        for choice in proc.choices if proc else ():
            for option in choice.options:
                words = (*option.says, option.label.zh, option.label.en)
                if any(len(w) >= 2 and normalize(w).replace(" ", "") in squashed for w in words if w):
                    return True
        return False

    def _more_than_options(self, state: ConversationState, name: str) -> bool:
        """Whether a name says more than the procedure's options and a company mark: "宝鸡秦风
        物流有限公司" does, "代理公司" and "不是代理企业" do not."""
        proc = self.procedure(state)
        rest = normalize(name).replace(" ", "")
        phrases = {
            normalize(w).replace(" ", "")
            for choice in (proc.choices if proc else ())
            for option in choice.options
            for w in (*option.says, option.label.zh)
            if w and len(w) >= 2
        }
        for phrase in sorted(phrases, key=len, reverse=True):
            rest = rest.replace(phrase, "")
        rest = _ENDS_WITH_MARK.sub("", rest)
        rest = re.sub(r"(?:企业|不是|是|我们)", "", rest)
        return len(rest) >= 2

    def _names_a_company(self, state: ConversationState, text: str, nlu: Understanding | None) -> bool:
        """Whether a reply to "为哪家企业办理" is a company name: one with a company mark
        (有限公司, 厂, Ltd), or a plausible proper name: no sentence words (我们, 还没, 了),
        no option of the procedure (有卡, 线下), no dialogue intent, not a place alone."""
        settings = self.kb.walkthrough
        folded = f" {normalize(text)} "
        if any(word in folded for word in settings.sentence_words):
            return False  # "我们是代理企业": a sentence (a name in one was looked for before)
        if any(mark in folded for mark in settings.company_marks):
            return True
        if nlu is not None and nlu.intent and not nlu.intent.startswith(FAQ_INTENT) and nlu.confidence >= 0.5:
            return False  # a greeting, "ok", "下一步" ...
        squashed = folded.replace(" ", "")
        if self._is_option_text(state, text):
            return False
        # Else a name (set_company says what is wrong with one too short or too long), unless
        # it is a place alone ("西安").
        # "陕西的", "珠海这边": a place and particles, no name.
        rest = squashed
        for region in self.kb.regions.values():
            for alias in sorted(
                {normalize(a) for a in region.aliases} | {normalize(region.name)}, key=len, reverse=True
            ):
                rest = rest.replace(alias, "")
        return bool(rest.strip(_PLACE_PARTICLES))

    def awaited_text(
        self, state: ConversationState, text: str, nlu: Understanding | None, now: datetime
    ) -> list[Reply] | None:
        """A typed answer to what the bot asked; None when the text is something else."""
        awaiting = state.awaiting
        if awaiting is None:
            return None
        intent = nlu.intent if nlu else ""
        typed = text  # a company name is kept as typed; anything else is read as spelt right
        text = nlu.plain.strip() if nlu is not None and nlu.plain.strip() else text
        if awaiting.kind == "company_name":
            if any(w in text.lower() for w in self.kb.walkthrough.name_later):
                return self.button(state, f"{PREFIX}company:later", now)  # "先不写公司名了": 先不填
            spelt = self.company_name_in(text)
            named = _as_typed(spelt, text, typed) if spelt else None
            if named is not None and not self._more_than_options(state, named):
                named = None  # "代理企业": the next question answered, not a name
            if named is not None:
                return self.set_company(state, named, now)  # "乙公司科技有限公司", whatever the NLU read
            embedded = self.embedded_company(typed)
            if embedded is not None and not is_question(text):
                # "西安星河贸易有限公司，我们还没有卡": the name, then the rest read as an answer.
                replies = self.set_company(state, embedded, now)
                rest = typed.replace(embedded, " ").strip(" ，,。")
                follow = self.awaited_text(state, rest, None, now) if rest and state.awaiting is not None else None
                return [*replies, *follow] if follow else replies
            if intent in {
                "human",
                "help",
                "restart",
                "where_am_i",
                "switch_company",
                "start_walkthrough",
            } or is_question(text):
                return None
            later = {self.msg.get("wt.buttons.later", lang).lower() for lang in ("zh", "en")}
            if text.strip().lower() in later:
                return self.button(state, f"{PREFIX}company:later", now)  # the button's label, typed
            if not self._names_a_company(state, text, nlu):
                # "有卡", "你好", "西安": no company name. The company is named for now (it can
                # be named later, the forms ask for it) and the text is read as what it is.
                defaulted = self.set_company(state, None, now)
                follow = self.awaited_text(state, text, nlu, now) if state.awaiting is not None else None
                return [*defaulted, *follow] if follow else defaulted
            return self.set_company(state, typed, now)
        if awaiting.kind == "region":
            region = nlu.entities.get("region") if nlu else None
            if region in self.kb.procedures and not is_question(text):
                return self.start(state, now, region)
            return None
        if awaiting.kind == "choice":
            return self.choice_from_text(state, text, nlu, now)
        if awaiting.kind == "skip_reason":
            if is_question(text) or intent in {"human", "help", "back", "continue", "where_am_i"}:
                return None
            if intent == "deny":
                state.awaiting = None
                return self.present(state, now)
            return self._skip(state, awaiting.ref, self._skip_reason(state, text, intent), now, warn=True)
        if awaiting.kind == "confirm_restart" and intent in {"affirm", "deny"}:
            return self.restart(state, intent == "affirm", now)
        if awaiting.kind == "confirm_region" and intent in {"affirm", "deny"}:
            return self.button(state, f"{PREFIX}switch:{awaiting.ref}" if intent == "affirm" else f"{PREFIX}stay", now)
        return None

    # ------------------------------------------------------------------ reminders
    def set_reminders(self, state: ConversationState, enabled: bool) -> list[Reply]:
        state.reminders_enabled = enabled
        return [Reply(self._m(state, "reminders_on" if enabled else "reminders_off"))]

    def desired_reminders(self, state: ConversationState) -> list[ReminderSpec]:
        """Every reminder the state calls for, fired or not."""
        out: list[ReminderSpec] = []
        for ci, company in enumerate(state.companies):
            for region, prog in company.progress.items():
                proc = self.kb.procedures.get(region)
                if proc is not None and prog.finished and prog.updated_at is not None:
                    for step in self.still_needed(proc, prog):
                        out.append(
                            ReminderSpec(
                                key=f"skipped:{ci}:{region}:{step.id}:{prog.updated_at.isoformat()}",
                                due=prog.updated_at + timedelta(days=self.kb.walkthrough.idle_nudge_days),
                                kind="skipped",
                                company=ci,
                                region=region,
                                step=step.id,
                            )
                        )
                if proc is None or prog.finished:
                    continue
                for step in proc.steps:
                    if step.id in prog.done or step.id in prog.skipped:
                        continue
                    for ms in step.milestones:
                        at = prog.milestones.get(ms.id)
                        if at is None or not matches(ms.when, prog.answers):
                            continue
                        day = _local_date(at)
                        for i, rule in enumerate(ms.reminders):
                            out.append(
                                ReminderSpec(
                                    key=f"ms:{ci}:{region}:{ms.id}:{i}:{day.isoformat()}",
                                    due=_due(rule.after(day)),
                                    kind="milestone",
                                    company=ci,
                                    region=region,
                                    step=step.id,
                                    milestone=ms.id,
                                    rule=i,
                                )
                            )
        active = state.progress()
        if active is not None and not active.finished and active.updated_at is not None and state.company is not None:
            assert state.walkthrough is not None
            out.append(
                ReminderSpec(
                    key=f"idle:{state.company}:{state.walkthrough}:{active.updated_at.isoformat()}",
                    due=active.updated_at + timedelta(days=self.kb.walkthrough.idle_nudge_days),
                    kind="idle",
                    company=state.company,
                    region=state.walkthrough,
                )
            )
        return out

    def sync_reminders(self, state: ConversationState) -> None:
        """Bring ``state.reminders`` in line with the progress; forget fired keys no longer wanted."""
        desired = self.desired_reminders(state) if state.reminders_enabled else []
        keys = {r.key for r in desired}
        state.fired = [k for k in state.fired if k in keys]
        state.reminders = [r for r in desired if r.key not in state.fired]

    def fire(self, state: ConversationState, key: str) -> list[Reply]:
        """A reminder came due: its message, once; nothing if it was cancelled meanwhile."""
        spec = next((r for r in state.reminders if r.key == key), None)
        if spec is None or not state.reminders_enabled:
            return []
        state.fired.append(key)
        state.reminders = [r for r in state.reminders if r.key != key]
        company = state.companies[spec.company]
        proc = self.kb.procedures[spec.region]
        prog = company.progress.get(spec.region, Progress())
        off = self._button(state, "reminders_off", f"{PREFIX}reminders:off")
        resume = self._button(state, "continue", f"{PREFIX}resume:{spec.company}:{spec.region}")
        if spec.kind == "idle":
            step = proc.step(prog.current) if prog.current else self._next_open(proc, prog)
            if step is None:
                return []
            text = self._m(
                state,
                "idle",
                company=company.name,
                procedure=proc.title.get(state.lang),
                n=self._number(proc, step),
                total=len(proc.steps),
                title=step.title.get(state.lang),
                days=self.kb.walkthrough.idle_nudge_days,
            )
            return [Reply(text, (resume, off))]
        step = proc.step(spec.step)
        if spec.kind == "skipped":
            if step.id not in prog.skipped:
                return []  # done meanwhile
            text = self._m(
                state,
                "skipped_reminder",
                company=company.name,
                procedure=proc.title.get(state.lang),
                n=self._number(proc, step),
                title=step.title.get(state.lang),
            )
            return [
                Reply(
                    text, (self._button(state, "continue", f"{PREFIX}redo:{spec.company}:{spec.region}:{step.id}"), off)
                )
            ]
        ms = next(m for m in step.milestones if m.id == spec.milestone)
        at = prog.milestones.get(ms.id)
        day = _local_date(at) if at else spec.due.date()
        rule = ms.deadline or ms.reminders[0]
        text = (
            ms.reminders[spec.rule]
            .text.get(state.lang)
            .format(company=company.name, date=day.isoformat(), deadline=rule.after(day).isoformat())
        )
        return [Reply(text, (resume, off))]
