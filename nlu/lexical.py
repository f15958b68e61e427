"""The in-process NLU engine: fuzzy intent matching plus the knowledge retriever.

It needs nothing outside this process, so it is also what keeps the bot answering when the
Rasa server is down. Short messages are compared with the dialogue intents' examples;
anything else is a knowledge question whose entry the retriever ranks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from knowledge.index import Retriever, default_retriever
from knowledge.text import is_english, normalize
from nlu.cues import default_cues
from nlu.gazetteer import Gazetteer, default_gazetteer
from nlu.intents import IntentClassifier
from nlu.interpreter import FAQ_INTENT, OUT_OF_SCOPE, Understanding
from nlu.normalize import Normalizer, default_normalizer

__all__ = ["INTENTS_FILE", "LexicalInterpreter", "default_lexical", "load_intent_requirements", "load_intents"]

INTENTS_FILE = Path(__file__).resolve().parent / "data" / "intents.yaml"
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# A message longer than this is a question even when it starts with "你好" (English words
# are longer than Chinese characters, hence a second limit).
_MAX_CHAT_LEN = 12
_MAX_CHAT_LEN_ASCII = 32
# Commands the learned classifier may read in a message no example is close to, how long
# such a message may be, and how sure it must be (a question is never one of these but
# "where am I").
_LEARNED_INTENTS = frozenset({"start_walkthrough", "continue", "back", "skip", "where_am_i", "restart"})
_MAX_LEARNED_LEN = 30
_MAX_LEARNED_WORDS = 12
# Commands a clause of a longer statement may give.
_CLAUSE_COMMANDS = frozenset({"skip", "back", "restart"})
_COURTESY = frozenset({"thanks", "greet"})
_LEARNED_CONFIDENCE = 0.9
# A command said of a step by name ("本地备案跳过") is read without the name when this short.
_BARE_COMMAND = 6
# How many characters before a request in a run-on are read with it, tried in turn.
_TAIL_LEADS = (0, 4, 8)
# A request to be led this close to the end of a message (characters from its start) ends it.
_REQUEST_TAIL = 10
_REQUESTED_CONFIDENCE = 0.7
_LEAD = re.compile(r"带|帮|教|陪|领|引导|指导|从哪|walk|guide|take|help|start")
_ASKS = re.compile(r"[?？]|吗|怎么|哪|什么|如何|多少|能否|是否|可不可以|能不能|要不要|需不需要")


def _asks_not_to_be_led(text: str) -> bool:
    """A question about the procedure ("新企业入网要办些啥"), not a request to be led through
    it ("新企业入网怎么开始", "带我办一下"): answered (the overview offers to start)."""
    cues = default_cues()
    return cues.is_question(text) and cues.request(text) < 0


def load_intents(path: Path = INTENTS_FILE) -> dict[str, tuple[str, ...]]:
    """Dialogue intents and their examples; an example may hold ``<entity>`` templates."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {name: tuple(str(x) for x in spec["examples"]) for name, spec in raw["intents"].items()}


def load_intent_requirements(path: Path = INTENTS_FILE) -> dict[str, tuple[str, ...]]:
    """Per command intent, words one of which a message must contain to be read as it.

    A guard against either engine turning a question into a command ("推荐一家好吃的餐厅"
    read as ``switch_company``): without one of these words the message is a question.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        name: tuple(str(w).lower() for w in spec["requires"])
        for name, spec in raw["intents"].items()
        if "requires" in spec
    }


def _squash(text: str) -> str:
    return _PUNCT.sub("", normalize(text))


def _short(text: str) -> bool:
    """Short enough to be one command: characters for Chinese, words for English."""
    if text.isascii():
        return len(text.split()) <= _MAX_LEARNED_WORDS
    return len(_squash(text)) <= _MAX_LEARNED_LEN


@dataclass(frozen=True)
class _Example:
    intent: str
    text: str


class LexicalInterpreter:
    """Dialogue intents by fuzzy match, knowledge questions by retrieval."""

    name = "lexical"

    def __init__(
        self,
        retriever: Retriever,
        intents: dict[str, tuple[str, ...]],
        gazetteer: Gazetteer,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.retriever = retriever
        self.gazetteer = gazetteer
        self.normalizer = normalizer
        # The words a start must contain (intents.yaml ``requires``): a request to be led that
        # speaks of the procedure.
        self._start_words = load_intent_requirements().get("start_walkthrough", ())
        # Entity slots become one Greek letter each, in templates and in messages alike, so
        # "开始办理珠海的入网" matches the template "开始<region>的入网流程".
        self._slot = {name: chr(0x3B1 + i) for i, name in enumerate(gazetteer.names)}
        # A step named with "这步/那步" is "this step" to the classifier: "JC备案这步跳过" is
        # the skip of "这步跳过", "回到本地备案那步" the back of "回到那步".
        names = {
            normalize(name)
            for proc in retriever.kb.procedures.values()
            for step in proc.steps
            for name in (*step.says, step.title.zh)
        }
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
        self._named_step = re.compile(rf"(?:{alternatives})\s*的?\s*(?=(?:这|那)一?(?:步|块|个环节))")
        self._step_name = re.compile(rf"(?:{alternatives})(?:这一步|那一步|这步|那步)?")
        self._examples = [_Example(i, self._squash_template(t)) for i, texts in intents.items() for t in texts]
        self._example_texts = [ex.text for ex in self._examples]
        # The classifier reads texts with their entities masked as the fuzzy match does:
        # "带我走一遍珠海的接入流程" is about starting, not about 珠海.
        examples = {i: [self._for_classifier(t, template=True) for t in texts] for i, texts in intents.items()}
        questions = [
            self._for_classifier(q) for e in retriever.kb.entries for q in (e.title, e.en.title, *e.questions) if q
        ]
        self.classifier = IntentClassifier(examples, questions)

    def _squash_template(self, template: str) -> str:
        pieces = re.split(r"<([a-z_]+)>", template)
        return "".join(_squash(p) if i % 2 == 0 else self._slot.get(p, "") for i, p in enumerate(pieces))

    def _for_classifier(self, text: str, template: bool = False) -> str:
        if text.isascii():
            # English keeps its spaces (the classifier reads words); places become one word.
            if template:
                return re.sub(r"<[a-z_]+>", " slot ", text)
            norm = normalize(text)
            out, at = [], 0
            for m in self.gazetteer.find(norm):
                out += [norm[at : m.start], " slot "]
                at = m.end
            return "".join([*out, norm[at:]])
        return self._squash_template(text) if template else self._masked(text)

    def _masked(self, text: str) -> str:
        """The text squashed, with each entity mention replaced by its slot letter."""
        norm = self._named_step.sub("", normalize(text))
        out, at = [], 0
        for m in self.gazetteer.find(norm):
            out.append(_squash(norm[at : m.start]))
            out.append(self._slot[m.entity])
            at = m.end
        out.append(_squash(norm[at:]))
        return "".join(out)

    def entities(self, text: str) -> dict[str, str]:
        """Entities by gazetteer; ``region`` is the one region the text places itself in."""
        found = {k: v for k, v in self.gazetteer.values(text).items() if k != "region"}
        region = self.retriever.detect_region(text)
        if region:
            found["region"] = region
        return found

    def chat_intent(self, text: str) -> tuple[str, float] | None:
        """The dialogue intent of a short message, or None for a question."""
        squashed = self._masked(text)
        limit = _MAX_CHAT_LEN_ASCII if squashed.isascii() else _MAX_CHAT_LEN
        if not squashed or len(squashed) > limit:
            return None
        found = process.extractOne(squashed, self._example_texts, scorer=fuzz.ratio)
        if found is None:
            return None
        _, ratio, index = found
        score = ratio / 100.0
        if score < 0.86:
            return None
        intent = self._examples[index].intent
        if intent == "start_walkthrough" and _asks_not_to_be_led(text):
            return None  # "新企业入网要办些啥": a question about the procedure (its overview offers to start)
        return intent, score

    def overriding_intent(self, text: str) -> tuple[str, float] | None:
        """What this engine reads in ``text`` that should win over another engine's reading of
        it as a question or a chat turn: a walkthrough command, or a message close to one of
        the out-of-scope examples ("What is the capital of France?")."""
        chat = self.chat_intent(text)
        if chat is not None and chat[0] == OUT_OF_SCOPE:
            return chat
        return self.learned_intent(text)

    def learned_intent(self, text: str) -> tuple[str, float] | None:
        """A walkthrough command said in words no example is close to ("带我走一下流程"), by
        the classifier learned from all the examples; None for a question or when unsure."""
        squashed = _squash(text)
        if not squashed:
            return None
        found = (self._learned_whole(text) or self._said_of_a_step(text)) if _short(text) else None
        if found is not None:
            return found
        # A message of several clauses may hold a start among its facts ("我们公司想在陕西开通
        # 跨境电商，法人卡之前就办过了，麻烦带我走一下流程"): a clause that is one starts when it
        # ends the message or nothing after it asks ("想办电子口岸卡，申请材料有哪些" asks).
        cues = default_cues()
        clauses = cues.clauses(text)
        # Courtesy after the request ("…麻烦您按步骤指导一下，谢谢") ends nothing.
        while len(clauses) > 1 and (self.chat_intent(clauses[-1]) or ("", 0.0))[0] in _COURTESY:
            clauses = clauses[:-1]
        if cues.without_overview(text) is not None and cues.request(text) < 0:
            return None  # "…全部流程说一下": the overview, which offers to start
        if len(clauses) < 2:
            # One long run without punctuation (voice input): its request, if it ends with one
            # ("…你能带我办一下吗").
            # ("…你能带我办一下吗", "…你能不能一步一步教我怎么弄": the request with the words
            # just before it).
            at = cues.request(text)
            if at <= 0:
                return None
            for back in _TAIL_LEADS:
                tail = text[max(0, at - back) :]
                found = self._learned_whole(tail) if _short(tail) else None
                if found is not None and found[0] == "start_walkthrough":
                    return found
            return self._requested_start(text)
        for i, clause in enumerate(clauses):
            found = (self.chat_intent(clause) or self._learned_whole(clause)) if _short(clause) else None
            later_asks = any((_ASKS.search(c) or cues.is_question(c)) and cues.request(c) < 0 for c in clauses[i + 1 :])
            if found is not None and found[0] == "start_walkthrough" and not later_asks:
                return found
        # "…你帮我看下要怎么弄" at the end starts, unless a clause before it asks something else
        # ("办卡要什么材料，你帮我看下": that question).
        # A question about the whole procedure before it is what the walkthrough shows
        # ("接入要走哪些流程，帮忙带一下").
        asked_before = any(
            cues.is_question(c) and cues.request(c) < 0 and not cues.about_whole_procedure(c) for c in clauses[:-1]
        )
        requested = None if asked_before else self._requested_start(clauses[-1], text)
        if requested is not None:
            return requested
        # A step command among statements, in a message that asks nothing ("海关注册登记先不弄了，
        # 以后再办，同事出差了": skip, the rest its reason).
        if any(_ASKS.search(c) for c in clauses):
            return None
        for clause in clauses:
            found = (self.chat_intent(clause) or self._learned_whole(clause)) if _short(clause) else None
            if found is not None and found[0] in _CLAUSE_COMMANDS:
                return found
            found = self._said_of_a_step(clause)
            if found is not None:
                return found
        return None

    def _requested_start(self, ending: str, text: str | None = None) -> tuple[str, float] | None:
        """A message that ends asking to be led ("…要接入珠海的跨境电商系统你帮我看下要怎么弄",
        "…唔该你带下我点样接入") and speaks of the procedure (a word start_walkthrough requires)
        is a start, whatever the classifier made of its long tail."""
        cues = default_cues()
        at = cues.request(ending)
        if at < 0 or len(ending) - at > _REQUEST_TAIL:
            return None
        # Someone asked to lead or help ("帮我看下要怎么弄"), or where to start: not a bare
        # "怎么弄", which asks how a thing is done ("备案怎么弄").
        if not _LEAD.search(ending[at:].lower()):
            return None
        whole = (text or ending).lower()
        if not any(w in whole for w in self._start_words):
            return None
        return "start_walkthrough", _REQUESTED_CONFIDENCE

    def _said_of_a_step(self, clause: str) -> tuple[str, float] | None:
        """A step command said of a step by its name ("本地备案跳过", "回到海关注册登记"): the
        clause read without the name, when what is left is short."""
        bare = self._step_name.sub("", clause).strip().rstrip("吧呀啊哈了啦嘛呢~～。.!！ ")
        if bare == clause.strip() or not bare or len(bare) > _BARE_COMMAND:
            return None
        found = self.chat_intent(bare) or self._learned_whole(bare)
        return found if found is not None and found[0] in _CLAUSE_COMMANDS else None

    def _learned_whole(self, text: str) -> tuple[str, float] | None:
        intent, p = self.classifier.classify(self._for_classifier(text))
        if intent not in _LEARNED_INTENTS or p < _LEARNED_CONFIDENCE:
            return None
        asks_to_start = intent == "start_walkthrough" and default_cues().request(text) >= 0
        if intent != "where_am_i" and _ASKS.search(text) and not asks_to_start:
            return None
        if intent == "start_walkthrough" and _asks_not_to_be_led(text):
            return None
        if (
            intent == "start_walkthrough"
            and not asks_to_start
            and not any(w in text.lower() for w in self._start_words)
            and "region" not in self.entities(text)
        ):
            return None  # "我们跨境店铺明年开春才上线": no request, no word of starting, no region
        if intent == "start_walkthrough" and default_cues().without_overview(text) is not None:
            return None  # "全部步骤列一下": the overview, which offers to start
        return intent, p

    def parse_sync(self, text: str) -> Understanding:
        spelled = self.normalizer.spell(text) if self.normalizer else text
        # Pinyin for terms is Chinese ("hgzc ok" is 海关注册 ok).
        lang = "en" if is_english(text) and is_english(spelled) else "zh"
        query = self.normalizer.strip_padding(spelled) if self.normalizer else text
        entities = self.entities(spelled)
        chat = self.chat_intent(spelled) or self.learned_intent(spelled)
        if chat is not None:
            return Understanding(text, chat[0], chat[1], self.name, lang, entities, normalized=query, spelled=spelled)
        views = default_cues().views(query, self.retriever.known_words)
        ranking = tuple(self.retriever.shortlist(query, views=views))
        region = entities.get("region")
        top = next((h for h in ranking if not region or h.entry.region == region), None)
        if top is None:
            return Understanding(
                text, FAQ_INTENT, 0.0, self.name, lang, entities, hits=ranking, normalized=query, spelled=spelled
            )
        intent = f"{FAQ_INTENT}/{top.entry.id}"
        return Understanding(
            text, intent, top.confidence, self.name, lang, entities, hits=ranking, normalized=query, spelled=spelled
        )

    async def parse(self, text: str) -> Understanding:
        return self.parse_sync(text)


@cache
def default_lexical() -> LexicalInterpreter:
    return LexicalInterpreter(default_retriever(), load_intents(), default_gazetteer(), default_normalizer())
