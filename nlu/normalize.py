"""Bring a user's spelling to the knowledge base's before either engine reads the text.

Users type 電子口岸 (Zhuhai borders Macau), 电子口暗 (a pinyin IME's homophone), 单一窗户
(one wrong character), dzka (pinyin initials), I-Key, 单窗 and padding like 麻烦问下. The
steps, in order:

1. width and case (NFKC, lower case);
2. traditional -> simplified with OpenCC (``t2s``);
3. abbreviations and spellings from ``data/normalization.yaml``;
4. typos against the vocabulary of the knowledge base: a run of characters that is not a
   word, but sounds exactly like one of the vocabulary's terms (pypinyin), looks like it
   (the look-alike table), or differs from a term of four or more characters in one
   character, becomes that term; a Latin token that is the pinyin or the pinyin initials of
   one term becomes it;
5. for retrieval only, padding words are removed (``strip_padding``): the dialogue intents
   ("你好") need them.

The vocabulary is the knowledge base's own words, so a correction can only ever produce a
word some entry uses; a word the user typed that jieba or the vocabulary knows is never
changed. The Rasa export normalises its training examples the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import opencc
import yaml
from pypinyin import Style, lazy_pinyin

__all__ = ["NORMALIZATION_FILE", "Normalizer", "default_normalizer"]

NORMALIZATION_FILE = Path(__file__).resolve().parent / "data" / "normalization.yaml"
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN = re.compile(r"(?<![a-z0-9\-.])[a-z]+(?![a-z0-9\-.])")
_CODE = re.compile(r"[a-z]+(?:-[a-z0-9]+)+")
_UNDASHED = re.compile(r"(?<![a-z0-9-])([a-z]{2,})[ _]?(\d{2,})(?![a-z0-9])")
_SPACE = re.compile(r"\s+")
# Terms this long or longer may have one character wrong (shorter ones: too many neighbours).
_SUBSTITUTION_MIN = 4
_MAX_TERM = 8
# Homophones of three or more characters are typos; two-character ones are too common
# ("带吗" sounds like 代码) unless the tones match too and no character is a particle
# ("备按" is 备案, "渭难" 渭南; "卡好" is no 卡号, "各是" no 格式).
_SOUND_MIN = 3
_TONED_MIN = 2
# Pinyin initials shorter than this collide with English and with each other.
_INITIALS_MIN = 3
# The head of a longer term whose initials stand for it.
_HEAD_INITIALS = 4


@dataclass(frozen=True)
class _Data:
    lookalike: dict[str, str]  # wrong character -> right one
    abbreviations: dict[str, str]
    padding: tuple[str, ...]


def _load(path: Path) -> _Data:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    lookalike = {wrong: right for right, wrongs in raw["lookalike"].items() for wrong in wrongs}
    abbreviations = {_basic(str(k)): _basic(str(v)) for k, v in raw["abbreviations"].items()}
    padding = tuple(sorted({_basic(str(p)) for p in raw["padding"]}, key=len, reverse=True))
    return _Data(lookalike, abbreviations, padding)


def _basic(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    """One pattern for many words, longest first; Latin ends must be word ends."""
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        part = re.escape(word)
        if word[:1].isascii() and word[:1].isalnum():
            part = r"(?<![a-z0-9])" + part
        if word[-1:].isascii() and word[-1:].isalnum():
            part += r"(?![a-z0-9])"
        parts.append(part)
    return re.compile("|".join(parts)) if parts else re.compile(r"(?!x)x")


class Normalizer:
    """Spelling correction against a vocabulary, and padding removal."""

    def __init__(
        self,
        vocabulary: Iterable[str],
        is_word: Callable[[str], bool],
        data: _Data,
        particles: Iterable[str] = (),
        places: Iterable[str] = (),
        protected: Iterable[str] = (),
    ) -> None:
        self._t2s = opencc.OpenCC("t2s")
        self._is_word = is_word
        # Single characters that are words of their own (是, 的, 在): never a typo at a word's edge.
        self._particles = frozenset(p for p in particles if len(p) == 1)
        self._data = data
        terms = {_basic(w) for w in vocabulary}
        # A phrase that starts or ends with a particle ("海关代码是") is no term.
        self._terms = {
            t
            for t in terms
            if _CJK_RUN.fullmatch(t)
            and 2 <= len(t) <= _MAX_TERM
            and t[0] not in self._particles
            and t[-1] not in self._particles
        }
        # Targets map to themselves so a longer right word is never rewritten inside.
        self._abbrev = {**{v: v for v in data.abbreviations.values()}, **data.abbreviations}
        self._abbrev_re = _alternation(self._abbrev)
        # A one-character particle is filler only at the end of a clause ("好的呀"), never
        # inside a word ("干嘛").
        words = [p for p in data.padding if len(p) > 1]
        particles_end = [re.escape(p) + r"(?=[\s，,。.!！?？~…]|$)" for p in data.padding if len(p) == 1]
        self._padding_re = re.compile("|".join([_alternation(words).pattern, *particles_end]))
        self._firsts = frozenset((len(t), t[0]) for t in self._terms)
        self._seconds = frozenset((len(t), t[1]) for t in self._terms)
        self._by_sound: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self._by_tone: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self._by_mask: dict[str, set[str]] = defaultdict(set)
        latin: dict[str, set[str]] = defaultdict(set)
        for term in self._terms:
            sound = tuple(lazy_pinyin(term))
            self._by_sound[sound].add(term)
            if len(term) < _SOUND_MIN:
                self._by_tone[_toned(term)].add(term)
            latin["".join(sound)].add(term)
            if len(term) >= _INITIALS_MIN:
                latin["".join(s[0] for s in sound)].add(term)
            # The initials of a long term's head ("hgzc": 海关注册登记): users shorten both.
            for size in range(_HEAD_INITIALS, len(term)):
                latin["".join(s[0] for s in sound[:size])].add(term)
            if len(term) >= _SUBSTITUTION_MIN:
                for i in range(len(term)):
                    self._by_mask[term[:i] + "*" + term[i + 1 :]].add(term)
        # Not a Latin word the knowledge base itself uses (dxpid, ukey, web).
        own_latin = {w for t in terms for w in re.findall(r"[a-z]+", t)}
        # One term, or terms that all start with the shortest of them (海关注册登记, ...登记表).
        heads = {k: min(v, key=len) for k, v in latin.items()}
        self._latin = {
            k: head
            for k, head in heads.items()
            if all(t.startswith(head) for t in latin[k]) and len(k) >= _INITIALS_MIN and k not in own_latin
        }
        # Places by their pinyin, for English questions ("daqiao", "hengqin").
        place_terms = {_basic(p) for p in places if _CJK_RUN.fullmatch(_basic(p))}
        self._places = {"".join(lazy_pinyin(p)): p for p in place_terms}
        # Names no correction may change: other places of China ("上海电子口岸" is no typo of
        # 珠海电子口岸, it is Shanghai's).
        self._protected = _alternation(p for p in (_basic(w) for w in protected) if len(p) >= 2)
        # Codes written without their dash or with spaces ("kjds001", "kjds 001").
        self._codes = {t.replace("-", ""): t for t in terms if _CODE.fullmatch(t) and "-" in t}

    # ------------------------------------------------------------------ public
    def spell(self, text: str) -> str:
        """Width, case, script, abbreviations and typos; nothing removed."""
        text = self._t2s.convert(_basic(text))
        chinese = bool(_CJK.search(text)) or self._pinyin_only(text)
        # A Latin spelling becomes a Chinese term only in a Chinese message ("e-port" stays
        # in English).
        text = self._abbrev_re.sub(
            lambda m: self._abbrev[m.group(0)] if chinese or not _CJK.search(self._abbrev[m.group(0)]) else m.group(0),
            text,
        )
        text = _UNDASHED.sub(lambda m: self._codes.get(m.group(1) + m.group(2), m.group(0)), text)
        if chinese:
            text = _LATIN.sub(self._latin_word, text)
        elif self._places:  # "daqiao" in an English question is still 大桥
            text = _LATIN.sub(self._latin_place, text)
        return _CJK_RUN.sub(lambda m: self._correct_run(m.group(0)), text)

    def _pinyin_only(self, text: str) -> bool:
        """Whether a message without Chinese characters is Chinese typed in pinyin ("hgzc ok",
        "dyck zhuce"): every word of three letters or more spells a term."""
        words = [w for w in _LATIN.findall(text) if len(w) >= _INITIALS_MIN]
        return bool(words) and all(w in self._latin or w in self._places for w in words)

    def strip_padding(self, text: str) -> str:
        """``text`` without filler words; the text itself when nothing else would be left."""
        stripped = _SPACE.sub(" ", self._padding_re.sub(self._pad, text)).strip(" ，,。.!！~…")
        return stripped if _CJK.search(stripped) or re.search(r"[a-z]{2}", stripped) else text

    def _pad(self, m: re.Match[str]) -> str:
        """A filler's replacement: a space, unless the particle ends a word ("干嘛", "是吧"
        stays "干嘛": the question it asks)."""
        word = m.group(0)
        if len(word) == 1 and m.start() > 0 and self._is_word(m.string[m.start() - 1 : m.end()]):
            return word
        return " "

    # ------------------------------------------------------------------ typos
    def _latin_word(self, m: re.Match[str]) -> str:
        word = m.group(0)
        return self._latin.get(word) or self._places.get(word, word)  # "要做zhuhai跨境电商接入"

    def _latin_place(self, m: re.Match[str]) -> str:
        word = m.group(0)
        return self._places.get(word, word)

    def _known(self, chunk: str) -> bool:
        return chunk in self._terms or self._is_word(chunk)

    def _candidate(self, window: str, sound: tuple[str, ...], toned: tuple[str, ...] = ()) -> str | None:
        """The one vocabulary term ``window`` is a typo of, if there is exactly one."""
        size = len(window)
        # A term with one character wrong keeps its first or its second character.
        heads = {window[0], self._data.lookalike.get(window[0], window[0])}
        seconds = {window[1], self._data.lookalike.get(window[1], window[1])}
        if not (
            any((size, h) in self._firsts for h in heads)
            or any((size, c) in self._seconds for c in seconds)
            or (size >= _SOUND_MIN and sound in self._by_sound)
            or (size < _SOUND_MIN and toned in self._by_tone)
        ):
            return None
        found = set(self._by_sound.get(sound, ())) if len(window) >= _SOUND_MIN else set()
        if _TONED_MIN <= size < _SOUND_MIN and not any(ch in self._particles for ch in window):
            found |= self._by_tone.get(toned, set())
        fixed = "".join(self._data.lookalike.get(ch, ch) for ch in window)
        if fixed != window and fixed in self._terms:
            found.add(fixed)
        # One wrong character, but never a particle: "注册登记是" is 注册登记 + 是, and
        # "西安的新公司" is no typo of 西安高新.
        if not found and len(window) >= _SUBSTITUTION_MIN and not self._compound(window):
            for i in range(len(window)):
                if window[i] in self._particles:
                    continue
                found |= self._by_mask.get(window[:i] + "*" + window[i + 1 :], set())
        found.discard(window)
        return found.pop() if len(found) == 1 else None

    def _correct_run(self, run: str) -> str:
        """Replace windows of a CJK run, longest first, that are typos of one term."""
        if len(run) < 2:
            return run
        sounds = lazy_pinyin(run)
        kept = [(m.start(), m.end()) for m in self._protected.finditer(run)]
        out: list[str] = []
        i = 0
        while i < len(run):
            replaced = False
            for size in range(min(_MAX_TERM, len(run) - i), 1, -1):
                window = run[i : i + size]
                if window in self._terms:
                    out.append(window)
                    i += size
                    replaced = True
                    break
                if self._is_word(window):
                    continue
                toned = _toned(window) if size < _SOUND_MIN else ()
                term = self._candidate(window, tuple(sounds[i : i + size]), toned)
                if term is not None and not self._covers_known(run, i, size) and not _changes(kept, i, window, term):
                    out.append(term)
                    i += size
                    replaced = True
                    break
            if not replaced:
                out.append(run[i])
                i += 1
        return "".join(out)

    def _compound(self, text: str) -> bool:
        """Whether ``text`` is made of the vocabulary's words (海关 + 编码): then it is what
        the user meant, not a term with one character wrong (单一 + 窗户: 窗户 is no term)."""
        if text in self._terms or text in self._particles:
            return True
        return any(
            (text[:k] in self._terms or text[:k] in self._particles) and self._compound(text[k:])
            for k in range(1, len(text))
        )

    def _covers_known(self, run: str, start: int, size: int) -> bool:
        """Whether a right word already starts inside the window and runs past it, or
        starts before it and ends inside it ("那边审批": 边审批 is no typo of 待审批): the
        window would cut a correctly spelt word in two."""
        for j in range(start + 1, start + size):
            for n in range(start + size - j + 1, min(_MAX_TERM, len(run) - j) + 1):
                if self._is_word(run[j : j + n]):
                    return True
        for j in range(max(0, start - _MAX_TERM + 1), start):
            for end in range(start + 1, start + size):
                if self._is_word(run[j:end]):
                    return True
        return False


def _toned(text: str) -> tuple[str, ...]:
    """Each character's usual reading with its tone, looked up once per character (the
    same for a term and a window: no phrase context on either side)."""
    return tuple(_char_tone(ch) for ch in text)


@cache
def _char_tone(ch: str) -> str:
    return lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True)[0]


def _changes(kept: list[tuple[int, int]], at: int, window: str, term: str) -> bool:
    """Whether replacing ``window`` (at ``at``) by ``term`` changes a protected span's characters."""
    if not kept or len(term) != len(window):
        return bool(kept) and any(s < at + len(window) and e > at for s, e in kept)
    return any(window[j - at] != term[j - at] for s, e in kept for j in range(max(s, at), min(e, at + len(window))))


@cache
def default_normalizer() -> Normalizer:
    """The normaliser over the packaged knowledge base's vocabulary, built once."""
    from knowledge.index import default_retriever
    from nlu.places import default_other_places

    retriever = default_retriever()
    return Normalizer(
        retriever.vocabulary_terms(),
        retriever.tok.is_word,
        _load(NORMALIZATION_FILE),
        particles=retriever.tok.lexicon.stopwords,
        places=retriever.place_names(),
        protected=default_other_places().names,
    )
