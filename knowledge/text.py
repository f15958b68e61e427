"""Chinese-aware text normalisation and tokenisation.

jieba segments Chinese; its dictionary is extended with the knowledge base's own words
(keywords, terms, branch names, region aliases) so domain terms like 操作员卡 stay whole.
Character bigrams are produced alongside words because they survive typos and unusual
segmentation, which word tokens do not.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import snowballstemmer
import yaml

__all__ = ["Lexicon", "Tokenizer", "is_english", "load_lexicon", "normalize"]

jieba.setLogLevel(logging.WARNING)

_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z0-9'_-]*|\d+[a-z0-9-]*")
_SPACE = re.compile(r"\s+")
_CUT_CACHE = 8192


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower case, collapsed white space."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE.sub(" ", text).strip()


# Latin text that says nothing about the user's language: addresses and codes
# ("kj.singlewindow.shaanxi.cn 进去用啥登录" is a Chinese question).
_NOT_WORDS = re.compile(
    r"(?:https?://)?[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?:/[!-~]*)?"  # web addresses
    r"|[A-Za-z0-9.+\-]+@[A-Za-z0-9\-.]+"  # e-mail addresses
    r"|(?<![A-Za-z0-9])[A-Za-z]*\d[A-Za-z0-9\-]*(?![A-Za-z0-9])"  # codes with digits: KJDS-003, GM0111...
)


# Chinese words that carry a sentence's grammar: Chinese names in an English sentence ("the
# 建行 in 西安") have none, English nouns in a Chinese one ("cbec onboarding 从哪开始") do.
_CHINESE_GRAMMAR = re.compile(r"[的了吗呢吧啊呀嘛是我你咱们要想能会可该怎哪啥么从开始请问还没不这那就都也给让把被]")


def is_english(text: str) -> bool:
    """True when the text is mostly Latin-script words and its Chinese, if any, is names
    only (answer in English then); web addresses, e-mail addresses and codes do not count
    as words."""
    text = _NOT_WORDS.sub(" ", text)
    letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    cjk = _CJK.findall(text)
    if cjk and _CHINESE_GRAMMAR.search("".join(cjk)):
        return False
    return letters >= 4 and len(cjk) * 2 < letters


@dataclass(frozen=True)
class Lexicon:
    synonyms: dict[str, str]
    stopwords: frozenset[str]


def load_lexicon(path: Path) -> Lexicon:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Lexicon(
        synonyms={normalize(str(k)): normalize(str(v)) for k, v in raw["synonyms"].items()},
        stopwords=frozenset(normalize(str(w)) for w in raw["stopwords"]),
    )


_ENGLISH = snowballstemmer.stemmer("english")
_SERIES = re.compile(r"([a-z]{2,})-\d+$")


@lru_cache(maxsize=8192)
def _stem(word: str) -> str:
    """An English word's stem (Snowball): "applying", "applied" and "apply" are one word.
    Words with digits or dashes (kjds-001, e-port, ukey2) are kept as they are."""
    if not word.isalpha() or not word.isascii() or len(word) <= 3:
        return word
    return str(_ENGLISH.stemWord(word))


# Unknown words: a word jieba has seen 10**_UNKNOWN_SCALE times weighs _UNKNOWN_FLOOR.
_UNKNOWN_SCALE = 5.0
_UNKNOWN_FLOOR = 0.65


class Tokenizer:
    """Words (jieba + English) and CJK character bigrams of a text."""

    def __init__(self, lexicon: Lexicon, domain_words: Iterable[str]) -> None:
        self.lexicon = lexicon
        self._jieba = jieba.Tokenizer()
        # Longest first so a long synonym ("哪个地方") wins over a short one inside it.
        self._synonyms = sorted(lexicon.synonyms.items(), key=lambda kv: -len(kv[0]))
        for word in {normalize(w) for w in domain_words}:
            if _CJK.search(word) and len(word) >= 2:
                self._jieba.add_word(word, freq=20000)
        for target in lexicon.synonyms.values():
            if _CJK.search(target):
                self._jieba.add_word(target, freq=20000)
        self._jieba.initialize()
        self._cuts: dict[tuple[str, bool], tuple[str, ...]] = {}

    @property
    def jieba(self) -> jieba.Tokenizer:
        """The jieba tokenizer with the knowledge base's words (shared by jieba's tagger)."""
        return self._jieba

    def _cut(self, run: str, search_mode: bool) -> tuple[str, ...]:
        """jieba's words of one run of Chinese, cached: the clauses of a message come back
        in each of its views."""
        key = (run, search_mode)
        cached = self._cuts.get(key)
        if cached is None:
            cut = self._jieba.cut_for_search if search_mode else self._jieba.cut
            cached = tuple(cut(run))
            if len(self._cuts) >= _CUT_CACHE:
                self._cuts.clear()
            self._cuts[key] = cached
        return cached

    def boundaries(self, run: str) -> set[int]:
        """Where jieba's words of a run of Chinese start and end (precise mode)."""
        at, out = 0, {0}
        for word in self._cut(run, False):
            at += len(word)
            out.add(at)
        return out

    def unknown_weight(self, word: str) -> float:
        """How much a word the knowledge base never uses counts against an entry (0.3..1):
        less the more common it is in jieba's dictionary."""
        freq = self._jieba.FREQ.get(word) or 0
        return min(1.0, max(_UNKNOWN_FLOOR, 1.0 - math.log10(freq + 1) / _UNKNOWN_SCALE))

    def is_word(self, text: str) -> bool:
        """Whether jieba's dictionary (with the domain words) knows ``text`` as a word."""
        return bool(self._jieba.FREQ.get(text))

    def canonical(self, text: str) -> str:
        """Normalised text with variant wording replaced by the knowledge base's words."""
        text = normalize(text)
        for variant, target in self._synonyms:
            if variant in text:
                if variant.isascii():
                    text = re.sub(rf"\b{re.escape(variant)}\b", target, text)
                else:
                    text = text.replace(variant, target)
        return text

    def words(self, text: str, *, canonical: bool = True, search_mode: bool = True) -> list[str]:
        """Content words: jieba segments and stemmed English words, no stopwords.

        Documents are cut in search mode (a long word and its sub-words) so a query cut in
        precise mode (``search_mode=False``) finds its words in them without the noise
        sub-words that search mode invents for the query ("电子口岸卡" -> "子口").
        """
        text = self.canonical(text) if canonical else normalize(text)
        out: list[str] = []
        stop = self.lexicon.stopwords
        for run in _CJK_RUN.findall(text):
            out.extend(tok for tok in self._cut(run, search_mode) if tok not in stop)
        latin = _CJK_RUN.sub(" ", text)
        for tok in _LATIN_WORD.findall(latin):
            tok = tok.strip("'-_")
            if tok and tok not in stop:
                out.append(_stem(tok))
                # Like jieba's sub-words in search mode: a code's series ("kjds" of kjds-001)
                # is a word of the documents, so "KJDS那几张表" finds them.
                series = _SERIES.match(tok)
                if search_mode and series:
                    out.append(series.group(1))
        return out

    def bigrams(self, text: str, *, canonical: bool = True) -> list[str]:
        """Overlapping CJK character bigrams (single characters for one-character runs)."""
        text = self.canonical(text) if canonical else normalize(text)
        out: list[str] = []
        for run in _CJK_RUN.findall(text):
            if len(run) == 1:
                if run not in self.lexicon.stopwords:
                    out.append(run)
                continue
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
        return out
