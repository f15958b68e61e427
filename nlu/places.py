"""Places in China outside the regions the manuals cover, in Chinese and in pinyin.

"上海怎么办电子口岸卡" and "how do I register in Shenzhen" are about somewhere the manuals
say nothing of, and must not get a Shaanxi or Zhuhai answer that happens to match their other
words. The names come from python-stdnum's table of administrative divisions (the one its
resident-ID check uses): every province and prefecture-level city, with and without its
suffix (省, 市, 自治区 ...), the county-level cities, and their pinyin for English questions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

import stdnum
from pypinyin import lazy_pinyin

__all__ = ["OtherPlaces", "default_other_places"]

_LOC = Path(stdnum.__file__).resolve().parent / "cn" / "loc.dat"
_NAME = re.compile(r'(?:province|county)="(?:\[[^\]]*\])?([^"]+)"')
_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "地区", "省", "市", "盟")
_LATIN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_STREET = ("路", "街", "道", "巷", "桥")


def _names() -> set[str]:
    names: set[str] = set()
    for line in _LOC.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        code, _, rest = stripped.partition(" ")
        match = _NAME.search(rest)
        if match is None or match.group(1) in {"市辖区", "县", "省直辖县级行政区划"}:
            continue
        name = match.group(1)
        # Provinces (two digits), prefectures (four digits ending in 00) and county-level
        # cities (义乌市); not districts and counties, whose names are often plain words.
        prefecture = len(code) == 4 and code.endswith("00") and code != "0000"
        if not (len(code) == 2 or prefecture or (len(code) == 4 and name.endswith("市"))):
            continue
        names.add(name)
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) - len(suffix) >= 2:
                names.add(name[: -len(suffix)])
                break
    return names


class OtherPlaces:
    """Finds names of places other than ``covered`` (the regions' own places and every word
    the knowledge base uses) in a question."""

    def __init__(
        self,
        covered: Iterable[str],
        latin_words: Iterable[str] = (),
        boundaries: Callable[[str], set[int]] | None = None,
        is_word: Callable[[str], bool] | None = None,
    ) -> None:
        self._boundaries = boundaries
        self._is_word = is_word
        ours = {c for c in covered if len(c) >= 2}
        joined = "|".join(ours)

        def ours_inside(name: str) -> bool:  # a word of ours inside the name, or the name in one of ours
            parts = {name[i:j] for i in range(len(name)) for j in range(i + 2, len(name) + 1)}
            return bool(parts & ours) or name in joined

        self._chinese = sorted((n for n in _names() if not ours_inside(n)), key=len, reverse=True)
        skip = set(latin_words)
        self._pinyin = {"".join(lazy_pinyin(n)): n for n in self._chinese if "".join(lazy_pinyin(n)) not in skip}
        self._pattern = re.compile("|".join(map(re.escape, self._chinese)))

    def find(self, text: str) -> list[str]:
        """The other places ``text`` names (normalised, lower-case text)."""
        found = [m.group() for m in self._pattern.finditer(text) if self._aligned(text, m)] if self._chinese else []
        # In pinyin, as the user wrote it ("Shenzhen"): an English reply names it so.
        found += [w.title() for w in _LATIN.findall(text) if w.replace("'", "") in self._pinyin]
        return list(dict.fromkeys(found))

    def _aligned(self, text: str, match: re.Match[str]) -> bool:
        """Whether a name found starts and ends where words do: "开通什么" holds 通什 (a
        town in Hainan) across two words, and names no place."""
        if self._boundaries is None:
            return True
        start, end = match.start(), match.end()
        while start > 0 and _CJK.match(text[start - 1]):
            start -= 1
        while end < len(text) and _CJK.match(text[end]):
            end += 1
        cuts = self._boundaries(text[start:end])
        head, tail = match.start() - start, match.end() - start
        if head not in cuts:
            return False
        if tail in cuts:
            return True
        # jieba's dictionary has compounds of a place and a word ("北京海关"): the place
        # still starts a word, and the rest of that word is a word of its own (not a street:
        # 北京路 is a street in many cities).
        after = min(c for c in cuts if c > tail)
        rest = text[start:end][tail:after]
        street = rest.endswith(_STREET)
        return self._is_word is not None and len(rest) >= 2 and not street and self._is_word(rest)

    @property
    def names(self) -> tuple[str, ...]:
        """The Chinese names of the other places, longest first."""
        return tuple(self._chinese)


@cache
def default_other_places() -> OtherPlaces:
    from knowledge.index import default_retriever

    retriever = default_retriever()
    vocabulary = retriever.vocabulary_terms() | retriever.place_names()
    latin = {w for t in vocabulary for w in re.findall(r"[a-z]+", t.lower())}
    provinces = {n for r in retriever.kb.regions.values() for n in (r.name, r.name + "省")}
    return OtherPlaces(vocabulary | provinces, latin, retriever.tok.boundaries, retriever.tok.is_word)
