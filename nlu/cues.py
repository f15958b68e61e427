"""What kind of question a text is, read from cue words (``data/cues.yaml``).

The knowledge search ranks entries; these cues say what to do with them: which clause of
a rambling message asks the question, whether it asks for the step after one it names
("海关注册登记弄完了，然后呢"), for a region's whole procedure, or about two things at once
("API版和Web版材料一样吗"). Read on normalised text (``nlu.normalize``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CUES_FILE", "Comparison", "Cues", "default_cues"]

CUES_FILE = Path(__file__).resolve().parent / "data" / "cues.yaml"
# Punctuation ends a clause; so does a space next to Chinese (messenger style: "刚成立 想办卡").
_CLAUSE_SPLIT = re.compile(
    r"[，,。!！？?；;…~\n]+|(?<![a-z0-9])\.|\.(?=\s)|(?<=[\u4e00-\u9fff])\s+|\s+(?=[\u4e00-\u9fff])"
)
# A clause longer than this, unpunctuated, is several sentences said in one breath.
_UNPUNCTUATED = 24
_SENTENCE_START = re.compile(r"(?<=[\u4e00-\u9fff]{4})(?=我们|现在|然后|你帮|您帮|请问|麻烦|所以|但是|不过)")
# Spaces around a Chinese joiner do not end a clause ("KJDS-001 和 KJDS-003 分别是啥").
_TIGHT_JOINER = re.compile(r"\s*([和跟与及或+＋])\s*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# A view of a message must still say something: this many CJK characters (or Latin letters).
_MIN_VIEW = 4
# Asking clauses of one message that get views of their own (the last ones).
_ASKING_VIEWS = 2
# At most this many views of one message (each costs a search).
_MAX_VIEWS = 5


# What may stand before the 还是 of "rather": who, and particles ("我们还是", "那就还是").
_RATHER_HEAD = re.compile(
    r"我们|咱们|额们|俺们|我司|我|那就|那|就|要不|算了|最后|想了想|啊|哦|嗯|不过|但是|可是|还|也|都"
)

# A verb of choosing right after 还是 reads "rather" ("老板说还是去建行柜台办", "…还是用网页版").
_RATHER_VERB = re.compile(r"(?:用|去|选|走|换|改|按|就|先|直接)")


def _pattern(words: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for word in sorted({str(w).lower() for w in words}, key=len, reverse=True):
        part = re.escape(word)
        if word.strip().isascii() and word.strip()[:1].isalpha():
            # A whole word; a space it is written with already bounds that side (" and ").
            before = "" if word[:1].isspace() else r"(?<![a-z])"
            after = "" if word[-1:].isspace() else r"(?![a-z])"
            part = rf"{before}{part}{after}"
        parts.append(part)
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class Comparison:
    """Two things asked about together, each with the rest of the question."""

    first: str
    second: str


class Cues:
    def __init__(self, raw: dict[str, Any]) -> None:
        self._question = _pattern(raw["question"])
        self._next = _pattern(raw["next"])
        # "办卡申请交了 然后": the same at the very end of a message.
        asks = _pattern(raw.get("next_asks") or ()).pattern
        ending = r"[\s?？。.!！~～呀啊哈了的吗]*$"
        # Between the lead and the ask only words of asking ("之后我们要做什么"), never a thing
        # ("登录以后用户名是啥" asks about the user name).
        gap = "(?:" + _pattern(raw.get("next_gap") or ()).pattern + ")*"
        leads = _pattern(raw.get("next_leads") or ()).pattern
        weak = _pattern(raw.get("next_weak_leads") or ()).pattern
        self._next_lead = re.compile(f"(?:{leads}){gap}(?:{asks}){ending}")
        self._next_weak = re.compile(f"(?:{weak}){gap}(?:{asks}){ending}")
        self._next_end = re.compile("(?:" + _pattern(raw.get("next_end") or ()).pattern + r")[\s?？。.!！~～]*$")
        self._done_end = re.compile("(?:" + _pattern(raw["done"]).pattern + r")\s*$")
        # A statement that something is done: a done word of two or more characters at the end
        # (after the particles and punctuation that close a chat message), or "下一步"; with
        # none of the words that say it is not ("还没弄好").
        said_done = [w for w in [*raw["done"], *(raw.get("done_statement") or ())] if len(str(w).strip()) >= 2]
        closing = r"(?:[\s啦呀哈啊喔哦噢嘞咯了吧~～。.!！,，]|已经)*$"
        self._done_statement = re.compile(
            "(?:" + _pattern(said_done).pattern + ")" + closing + "|" + _pattern(raw.get("moving_on") or ()).pattern
        )
        self._not_done = _pattern(raw.get("not_done") or ())
        self._request = _pattern(raw.get("requests") or ["带我"])
        ends = raw.get("request_ends") or ()
        # "…从哪步开始弄啊": a verb of doing may follow the cue.
        tail = r"(?:弄|办|做|搞|整)?[\s?？。.!！呢呀啊吧]*$"
        self._request_end = re.compile("(?:" + _pattern(ends).pattern + ")" + tail) if ends else None
        self._did = re.compile(
            "(?:"
            + _pattern(raw.get("done_verbs") or ["弄"]).pattern
            + r")\S{0,6}?(?:了|咗|咧|啦|完|好|下来|成功|通过)[\s啦呀哈啊哦嘞咯咧晒喇了吧~～。.!！]*$"
            # The written 已 before a verb of doing ("材料已递交", "权限均已开通", "已审批通过").
            + r"|已(?:经)?\s*(?:"
            + _pattern(raw.get("done_verbs") or ["弄"]).pattern
            + ")"
        )
        self._overview = _pattern(raw["overview"])
        marks = _pattern(raw.get("before_marks") or ["之前"]).pattern
        b_asks = _pattern(raw.get("before_asks") or ["什么"]).pattern
        not_yet = _pattern(raw.get("not_yet") or ["没"]).pattern
        can = _pattern(raw.get("can_do") or ["能"]).pattern
        first = _pattern(raw.get("first_words") or ["先"]).pattern
        # "X之前(要/得/需要)(先)(做/办/完成)什么"
        self._before = re.compile(f"^(?P<target>.+?)(?:{marks})[\\s，,]*(?:要|得|需要|应该|必须)?(?:先)?(?:{b_asks})")
        # "(还)没(做过/办)A(，)(能/可以)(先/直接)B(吗)"
        self._without = re.compile(
            f"(?:{not_yet})(?:做过|办过|办|做|注册|有|弄|申请|拿到)?(?:好|过|完)?(?P<missing>.+?)[\\s，,]*"
            f"(?:{can})(?:{first})?(?P<target>.+?)(?:吗|么|不|嘛|呢)?[\\s?？。!！]*$"
        )
        # "A没(办/做)(，)(能/可以)(先/直接)B(吗)"
        self._undone = re.compile(
            f"^(?P<missing>.+?)(?:{not_yet})(?:办|做|弄|注册|申请|批|下来)(?:好|完|过)?[\\s，,]*"
            f"(?:{can})(?:{first})?(?P<target>.+?)(?:吗|么|不|嘛|呢)?[\\s?？。!！]*$"
        )
        # "要先(有/办)A才能B吗"
        self._first_then = re.compile(
            "(?:要|得|必须|需要)?先(?:有|办|做|注册|弄)?(?:好|完)?(?P<missing>.+?)才(?:能|可以)(?P<target>.+?)(?:吗|么|不|嘛|呢)?[\\s?？。!！]*$"
        )
        nouns = _pattern(raw.get("overview_nouns") or ()).pattern
        o_asks = _pattern(raw.get("overview_asks") or ()).pattern
        grammar = f"(?:{o_asks})\\S{{0,6}}?(?:{nouns})|(?:{nouns})\\S{{0,4}}?(?:{o_asks})"
        self._overview_grammar = re.compile(grammar) if nouns and o_asks else None
        spans = _pattern(raw.get("overview_span_asks") or ()).pattern
        self._overview_span = re.compile(f"从\\S{{1,8}}?到\\S{{1,8}}?(?:{spans})") if spans else None
        self._not_asking = _pattern(raw.get("not_asking") or ())
        self._fine = _pattern(raw.get("fine") or ())
        decided = _pattern(raw.get("decided") or ()).pattern
        self._decided = re.compile(rf"(?<![搞弄敲])(?:{decided})") if decided else re.compile("(?!)")
        self.procedure_words = frozenset(str(w) for w in raw.get("procedure_words") or ())
        self._whole_procedure = _pattern(raw.get("whole_procedure") or ())
        self._compare = _pattern(raw["compare"])
        self._joiner = _pattern(raw["joiners"])
        self._plural = _pattern(raw.get("plural") or ["两个"])
        definition = _pattern(raw.get("definition") or ())
        self._definition = (
            re.compile("(?:" + definition.pattern + r")[\s?？。.!！~～呀啊呢]*$") if raw.get("definition") else None
        )
        self._where = _pattern(raw.get("where") or ["哪里"])
        self.alternatives = frozenset(str(a) for a in raw.get("alternatives") or ())
        attributes: dict[str, dict[str, Any]] = raw.get("attributes") or {}
        self._attributes = {
            name: (_pattern(spec["asks"]), re.compile(str(spec["evidence"]), re.IGNORECASE))
            for name, spec in attributes.items()
        }

    # ------------------------------------------------------------------ kinds
    def _asking(self, question: str) -> str:
        """The question without the phrases that only look like asking ("刚成立没多久")."""
        return self._not_asking.sub(" ", question) if self._not_asking.pattern else question

    def asked_attributes(self, question: str) -> list[str]:
        """What the question asks for: hours, fee, address, phone, duration."""
        question = self._asking(question)
        return [name for name, (asks, _evidence) in self._attributes.items() if asks.search(question)]

    def shows(self, attributes: Iterable[str], answer: str) -> bool:
        """Whether ``answer`` shows every one of ``attributes``."""
        return all(self._attributes[name][1].search(answer) for name in attributes)

    def unanswered_attributes(self, question: str, answer: str) -> list[str]:
        """What the question asks for (hours, fee, address, phone, duration) that the answer
        does not show: an answer about the right thing that lacks what was asked."""
        question = self._asking(question)
        return [
            name
            for name, (asks, evidence) in self._attributes.items()
            if asks.search(question) and not evidence.search(answer)
        ]

    def is_question(self, text: str) -> bool:
        return bool(self._question.search(self._asking(text)))

    def without_overview(self, text: str) -> str | None:
        """The text without its overview cue ("JC备案包括哪几步" -> "JC备案包括"), or None
        when it asks for no overview."""
        cue = self._overview.search(text)
        # Read from its grammar, not in a request to be led ("入网要怎么走流程，带我做一下").
        for grammar in (self._overview_grammar, self._overview_span):
            if cue is None and grammar is not None and self.request(text) < 0:
                cue = grammar.search(text)
        if cue is None:
            return None
        return (text[: cue.start()] + " " + text[cue.end() :]).strip()

    def finished(self, text: str) -> str | None:
        """The thing a "what next" question says is finished ("卡拿到了"), or None if it asks
        no next step; ``without_done`` takes the words that say it is finished off."""
        cue = self._next.search(text) or self._next_end.search(text) or self._next_lead.search(text)
        if cue is None:
            weak = self._next_weak.search(text)
            # "该干嘛" asks what next only after something said done ("办完了该干嘛"), not in
            # "海关编码要怎么办".
            if weak is not None and self._said_done_before(text[: weak.start()]):
                cue = weak
        if cue is None or not cue.group(0).strip():
            return None
        before = text[: cue.start()].strip(" ，,。!！")
        if not before:  # "下一步是什么": the next after what was said before
            return ""
        return before

    def prerequisite(self, text: str) -> tuple[str, str | None] | None:
        """A prerequisite question's step asked about and the step said not done (or None):
        "企业类型备案之前得先弄啥" -> (企业类型备案, None); "没做过JC备案能直接申请本地备案吗" ->
        (申请本地备案, JC备案); None for any other question."""
        last = text.strip()
        for pattern in (self._first_then, self._undone, self._without):
            found = pattern.search(last)
            if found is not None:
                return found.group("target").strip(" ，,"), found.group("missing").strip(" ，,")
        found = self._before.search(last)
        if found is not None:
            return found.group("target").strip(" ，,"), None
        return None

    def supposes(self, text: str) -> bool:
        """Whether a "what next" question asks about a time after something, not saying it
        is done ("系统备案批下来以后还有什么要做的吗" vs "系统备案批下来了，还有什么要做")."""
        finished = self.finished(text)
        if not finished:
            return False
        after = text[len(finished) :].lstrip(" ，,。!！")
        return bool(re.match(r"(?:之后|以后|后)", after)) or bool(re.search(r"(?:之后|以后|后)$", finished))

    def about_whole_procedure(self, text: str) -> bool:
        """Whether ``text`` speaks of the procedure as a whole ("要走哪些流程", "手续怎么办")."""
        return bool(self._whole_procedure.pattern) and self._whole_procedure.search(text.lower()) is not None

    def request(self, text: str) -> int:
        """Where a request to be guided starts in ``text`` ("你能带我办一下吗", "can you walk me
        through it"), -1 if none: a question that asks to be walked through is a request."""
        found = self._request.search(text.lower())
        if found is None and self._request_end is not None:
            found = self._request_end.search(text.lower())
        return found.start() if found else -1

    def _said_done_before(self, text: str) -> bool:
        """Whether ``text`` (what comes before "该干嘛") ends by saying something is done."""
        before = re.sub(r"(?:之后|以后|后)$", "", text.strip(" ，,。!！、"))  # "搞定后要做什么"
        return bool(before) and bool(self._done_statement.search(before) or self._did.search(before))

    def says_done(self, text: str) -> bool:
        """Whether ``text`` says, without asking, that something is done ("这一步弄好啦",
        "海关那个登记也搞定了", "ok 下一个"), as a user says a walkthrough step is."""
        folded = text.strip().lower()
        plain = self._fine.sub(" ", folded) if self._fine.pattern else folded  # "确认没问题了"
        if self.is_question(folded) or self._not_done.search(plain):
            return False
        folded = self._decided.sub(" ", folded)  # "技术都定好了": decided, not done
        if self._done_statement.search(folded):
            return True
        # Any clause that says so ("装好了 激活也弄了 搞掂"): a done word at its end, or a verb
        # of doing with a perfective particle after it ("卡收到了", "备案也弄了").
        # Voice input runs on without punctuation ("新卡收到了快递今天下午到的"): a perfective
        # 了/咗 inside a clause ends a part of it too.
        parts = [p for c in self.clauses(folded) for p in re.split(r"(?<=[了咗咧])(?=[\u4e00-\u9fff])", c)]
        return any(self._done_statement.search(p.strip()) or self._did.search(p.strip()) for p in parts)

    def without_done(self, thing: str) -> str:
        """``thing`` without the words that say it is finished ("海关注册登记弄完了" -> 海关注册登记)."""
        thing = thing.strip(" ，,。!！")
        while (mark := self._done_end.search(thing)) is not None and mark.start() > 0:
            thing = thing[: mark.start()].strip(" ，,。!！")
        return re.sub(r"^(?:我们|我|已经|都)+", "", thing)

    def defined_term(self, text: str) -> str | None:
        """The term a "what does it mean" question asks about ("请问代理企业是指什么" -> 代理企业),
        or None for any other question."""
        found = self._definition.search(text) if self._definition else None
        if found is None:
            return None
        term = re.split(r"[，,。!！?？\s]", text[: found.start()].rstrip().removesuffix("是").rstrip())[-1]
        term = re.sub(r"^(?:请问|那个|这个|那|这|所谓的?|你们说的|手册里的?|上面的?)+", "", term)
        return term if len(term) >= 2 else None

    def asks_where(self, text: str) -> bool:
        """Whether the question asks where to go (哪里, 在哪, where, nearest)."""
        return bool(self._where.search(text.lower()))

    def wants_all(self, text: str) -> bool:
        """Whether the text asks for every one of something (两个代码, 分别, both, all)."""
        return bool(self._plural.search(text) or self._compare.search(text) or self._joiner.search(text))

    def compares(self, text: str) -> bool:
        """Whether the text asks about two things side by side (区别, 一样吗, 分别, both); not
        the 还是 of "rather" ("还是换回客户端", "我们还是线下办吧"), with nothing before it in its
        clause but who and particles."""
        for found in self._compare.finditer(text):
            if found.group() != "还是":
                return True
            head = re.split(r"[\s，,。!！?？；;]", text[: found.start()])[-1]
            verb = _RATHER_VERB.match(text, found.end())
            parallel = verb is not None and verb.group() in head  # "选web还是选api": a question
            if _RATHER_HEAD.sub("", head) and (parallel or verb is None) and not head.endswith("说"):
                return True
        return False

    def comparison(self, text: str) -> Comparison | None:
        """The two sides of "A和B有什么区别" / "A还是B" / "A和B的电话", each with the shared
        rest of the question ("API版和Web版上传的材料一样吗" -> "API版上传的材料", "Web版上传的材料")."""
        for clause in self.clauses(_TIGHT_JOINER.sub(r"\1", text)):
            joined = self._joiner.search(clause)
            if joined is None:
                continue
            left, right = clause[: joined.start()].strip(), clause[joined.end() :].strip()
            if not left or not right:
                continue
            compare = self._compare.search(right)
            # What asks for the comparison ("有啥不一样", "分别") is no part of either side.
            rest = right[compare.end() :] if compare else ""
            right_core = right[: compare.start()] if compare else right
            # The shared rest: what follows the second side, e.g. "上传的材料" in "Web版上传的材料一样吗".
            first = (left + " " + right_core[_head(right_core, left) :] + rest).strip()
            return Comparison(first=first, second=(right_core + rest).strip() or right)
        return None

    # ------------------------------------------------------------------ clauses
    def clauses(self, text: str) -> list[str]:
        out: list[str] = []
        for clause in _CLAUSE_SPLIT.split(text):
            if not clause.strip():
                continue
            # Voice input has no punctuation: a long run is cut where a new sentence starts
            # ("…报关服务有限公司我们是做代理报关的现在要接入…你帮我看下要怎么弄").
            if len(clause) > _UNPUNCTUATED:
                out.extend(c for c in _SENTENCE_START.split(clause) if c.strip())
            else:
                out.append(clause)
        return out

    def views(self, text: str, known: Callable[[str], str] | None = None) -> list[str]:
        """The text, then the parts of it that ask. A long message about the company before
        its question is judged by its question, not by how much of the story the manuals
        cover: each asking clause alone and with the clauses before it, and each asking
        clause with only the ``known`` words of the other clauses (the words some entry uses:
        "我们是西安一家做母婴的小公司，想办电子口岸卡，材料有哪些" -> "西安 电子口岸卡 材料有哪些")."""
        clauses = self.clauses(text)
        if len(clauses) < 2:
            return [text]
        asking = [i for i, c in enumerate(clauses) if self.is_question(c)] or [len(clauses) - 1]
        views = [text]

        def add(view: str) -> None:
            if view not in views and _says_enough(view):
                views.append(view)

        asking = asking[-_ASKING_VIEWS:]  # the last questions of a long message: its point
        if known is not None:
            for i in asking:
                context = " ".join(known(c) for j, c in enumerate(clauses) if j != i)
                add(f"{context} {clauses[i]}".strip())
        last = asking[-1]
        for start in (last - 1, last, last - 2):
            if start >= 0:
                add(" ".join(clauses[start : last + 1]))
        return views[:_MAX_VIEWS]


# The second side's name ends within this many characters of its start.
_HEAD_MAX = 6


def _head(side: str, first: str = "") -> int:
    """Where the second side's own name ends. Where it ends as the first side's does ("有卡和
    没卡注册": 没卡; "卡加签跟加密机加签": 加密机加签; "进口和出口备案": 出口), there; else at its
    Latin word or its first CJK run of up to 4 characters ("web版上传的材料" -> after "web版")."""
    name = re.sub(r"^.*\s", "", first)
    cjk_end = re.search(r"[\u4e00-\u9fff]+$", name)
    name = cjk_end.group() if cjk_end else ""
    for size in range(len(name), 0, -1):
        at = side.find(name[-size:], 0, _HEAD_MAX + size)
        if at >= 0 and (size > 1 or at > 0):
            return at + size
    m = re.match(r"[a-z0-9]+[\u4e00-\u9fff]?|[\u4e00-\u9fff]{1,4}", side)
    return m.end() if m else 0


def _says_enough(view: str) -> bool:
    return len(_CJK.findall(view)) >= _MIN_VIEW or len(re.findall(r"[a-z]", view)) >= 2 * _MIN_VIEW


@cache
def default_cues() -> Cues:
    return Cues(yaml.safe_load(CUES_FILE.read_text(encoding="utf-8")))
