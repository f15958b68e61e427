"""Lexical search over the knowledge base: BM25 on words and on character bigrams,
IDF-weighted query coverage and fuzzy matching against the entries' sample questions.

The score that ranks entries is not the one that decides whether to answer: ``confidence``
is the share of what the user asked about (weighted by how specific each word is) that the
entry covers, blended with how close the question is to one the entry was written for.
A question about something the manuals never mention covers little of any entry, whatever
its rank, and so falls back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

from knowledge.loader import DATA_DIR, KnowledgeBase, load_default
from knowledge.render import search_texts
from knowledge.schema import BranchEntry, CodeEntry, Entry, TermEntry
from knowledge.text import Tokenizer, load_lexicon, normalize

_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")

__all__ = ["SHORTLIST", "Hit", "Retriever", "default_retriever", "domain_words"]

# The IDF weight of words only one manual uses that places a question in that manual.
_OWN_TERMS_MIN = 2.0
_OWN_TERM_ENTRIES = 3
# Added to the confidence of the entries a question names (a branch's city, a code).
_NAMED_BONUS = 0.12
# Question words whose coverage columns are kept (a few hundred kilobytes).
_COLUMN_CACHE = 4096
# What a view (the asking clause of a longer message) is worth beside the whole message.
_VIEW_DISCOUNT = 0.9
# ... and this when it kept none of the message's specific words (tuned on the tuning and fresh
# parts: 0.7 and below are alike).
_TOPICLESS_DISCOUNT = 0.7
# How many entries an answer considers (``nlu.hybrid.rank``), and so how many of each region
# a question's shortlist keeps.
SHORTLIST = 10


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    confidence: float


@dataclass
class _Doc:
    entry: Entry
    words: set[str]
    bigrams: set[str]
    phrases: list[str]  # canonical sample questions and title, for fuzzy matching


def domain_words(kb: KnowledgeBase) -> Iterable[str]:
    for e in kb.entries:
        yield from e.keywords
        if isinstance(e, TermEntry):
            yield e.term
        if isinstance(e, BranchEntry):
            yield from (e.name, e.city, e.district)
    for region in kb.regions.values():
        yield from region.aliases


_PHONE = re.compile(r"(?<![\d-])\d{3,4}-\d{7,8}(?![\d-])|(?<![\d-])0\d{2,3}-\d{5}(?![\d-])")
_CODE_NUMBER = re.compile(r"(?<!\d)(\d{4,6})(?!\d)(年)?")
_YEAR = re.compile(r"(?:19|20)\d\d")
# A message this long (characters) tells a story around its question.
_STORY_LENGTH = 20


class Retriever:
    """Ranks knowledge entries for a question; region-aware."""

    def __init__(self, kb: KnowledgeBase, tokenizer: Tokenizer) -> None:
        self.kb = kb
        self.tok = tokenizer
        self._docs: list[_Doc] = []
        word_corpus: list[list[str]] = []
        bigram_corpus: list[list[str]] = []
        for entry in kb.entries:
            words: list[str] = []
            bigrams: list[str] = []
            phrases: list[str] = []
            for text, weight in search_texts(entry):
                if not text:
                    continue
                reps = max(1, round(weight))
                w, b = tokenizer.words(text), tokenizer.bigrams(text)
                words += w * reps
                bigrams += b * reps
                if weight >= 2.0:
                    phrases.append(tokenizer.canonical(text))
            self._docs.append(_Doc(entry, set(words), set(bigrams), phrases))
            word_corpus.append(words)
            bigram_corpus.append(bigrams)
        self._vocabulary: set[str] = set().union(*(d.words for d in self._docs))
        self._domain = {normalize(w) for w in domain_words(kb)}
        self._bm25_words = BM25Okapi(word_corpus)
        self._bm25_bigrams = BM25Okapi(bigram_corpus)
        self._max_idf = max(self._bm25_words.idf.values())
        self._max_bigram_idf = max(self._bm25_bigrams.idf.values())
        # Every document's fuzzy-match phrases in one list, scored in one rapidfuzz call per
        # question; ``_phrase_owner`` says which document each phrase belongs to.
        self._phrases = [p for d in self._docs for p in d.phrases]
        self._phrase_owner = np.array([i for i, d in enumerate(self._docs) for _ in d.phrases], dtype=np.intp)
        self._aliases: list[tuple[str, str]] = sorted(
            ((normalize(a), key) for key, r in kb.regions.items() for a in r.aliases),
            key=lambda pair: -len(pair[0]),
        )
        self._region_names = {
            key: {normalize(r.name), normalize(r.name_en), normalize(r.name) + "省", normalize(r.name) + "市"}
            for key, r in kb.regions.items()
        }
        # The same facts as arrays over the documents, so that a question is scored against
        # every document at once (numpy) rather than in a Python loop per document.
        n = len(self._docs)
        self._in_region = {key: np.array([d.entry.region == key for d in self._docs]) for key in kb.regions}
        self._none = np.zeros(n, dtype=bool)
        self._has_word = _incidence(n, (d.words for d in self._docs))
        self._has_bigram = _incidence(n, (d.bigrams for d in self._docs))
        self._named_region: dict[str, np.ndarray] = {}  # a region's own name: implied by its entries
        for key, names in self._region_names.items():
            for name in names:
                self._named_region[name] = self._named_region.get(name, self._none) | self._in_region[key]
        # What an entry is about by name: a branch's city, district and name, a code entry's
        # codes and places. A question that names one of these is about such an entry
        # ("商洛的企业去哪办卡", "480040是哪里的"), whatever its other words.
        places = {alias for alias, _key in self._aliases}
        named: dict[str, set[int]] = {}
        for i, d in enumerate(self._docs):
            e = d.entry
            about: list[str] = []
            if isinstance(e, BranchEntry):
                about = [e.city, e.district, e.name]
            elif isinstance(e, CodeEntry):
                about = [e.code, *e.codes, *(k for k in e.keywords if normalize(k) in places)]
            # A phone number an entry gives names it too ("0756-8125566是哪里的电话").
            about += _PHONE.findall(" ".join([e.answer, *e.bullets]))
            for name in about:
                if len(normalize(name)) >= 2:
                    named.setdefault(normalize(name), set()).add(i)
        self._about = [(name, _mask(n, owners)) for name, owners in sorted(named.items(), key=lambda kv: -len(kv[0]))]
        self._columns: dict[tuple[str, bool], tuple[float, np.ndarray]] = {}
        self._words_bm25 = _Postings(self._bm25_words)
        self._bigrams_bm25 = _Postings(self._bm25_bigrams)

    @cached_property
    def _vocabulary_terms(self) -> frozenset[str]:
        return frozenset(self._build_vocabulary_terms())

    def vocabulary_terms(self) -> set[str]:
        """What a typo in a question may be corrected to (see ``_build_vocabulary_terms``)."""
        return set(self._vocabulary_terms)

    def _build_vocabulary_terms(self) -> set[str]:
        """What a typo in a question may be corrected to: the words of every entry (as
        indexed), the domain words, and the phrases of three to six characters that two or
        more entries use (单一窗口, 海关注册登记: terms jieba cuts in two), none across a particle
        and none that starts or ends inside a word (区主管海关 is a piece of 关区 + 主管海关)."""
        seen: dict[str, set[int]] = {}
        for i, entry in enumerate(self.kb.entries):
            for text, _weight in search_texts(entry):
                for run in _CJK_RUN.findall(normalize(text)):
                    edges = self.tok.boundaries(run)
                    for n in range(3, 7):
                        for j in range(len(run) - n + 1):
                            if j in edges and j + n in edges:
                                seen.setdefault(run[j : j + n], set()).add(i)
        # Not phrases across a particle ("代码是多"): those are no terms.
        particles = {w for w in self.tok.lexicon.stopwords if len(w) == 1}
        shared = {gram for gram, owners in seen.items() if len(owners) >= 2 and not particles & set(gram)}
        return {w for w in self._vocabulary if len(w) >= 2} | set(domain_words(self.kb)) | shared

    # ------------------------------------------------------------------ regions
    def detect_region(self, text: str) -> str | None:
        """The region a question names (province, city, district or system), if exactly one."""
        norm = normalize(text)
        found = set()
        for alias, key in self._aliases:
            if alias not in norm:
                continue
            if alias.isascii():
                if re.search(rf"\b{re.escape(alias)}\b", norm):
                    found.add(key)
            elif alias in norm:
                found.add(key)
        return found.pop() if len(found) == 1 else None

    def place_names(self) -> set[str]:
        """Every place the knowledge base knows: region aliases, branch cities and districts."""
        # Not the provinces themselves: their pinyin is ambiguous ("shanxi" is 山西 as well).
        provinces = {n for r in self.kb.regions.values() for n in (r.name, r.name + "省", r.name + "市")}
        names = {alias for alias, _key in self._aliases} - provinces
        names |= {w for e in self.kb.entries if isinstance(e, BranchEntry) for w in (e.city, e.district)}
        return names

    def known_words(self, text: str) -> str:
        """The content words of ``text`` that some entry uses, in order (the rest: the
        user's story, which no entry can be about)."""
        return " ".join(w for w in self.tok.words(text, search_mode=False) if len(w) >= 2 and w in self._vocabulary)

    def covers_only_places(self, text: str, entry: Entry) -> bool:
        """Whether the only words of ``text`` that ``entry`` has are place names, and the rest
        is about something no entry knows ("宝鸡明天下雨吗" and the 宝鸡 branch): the question
        names where, but asks nothing the manuals say."""
        doc = self._docs[self._index_of[entry.id]]
        places = self._place_set
        stop = self.tok.lexicon.stopwords
        words = [w for w in self.tok.words(text) if w not in stop and (len(w) >= 2 or w in self._vocabulary)]
        covered = [w for w in words if w in doc.words]
        # Besides the place, it asks about something no entry knows ("堵车"), and the entry has
        # none of its characters (jieba cuts "珠海的卡分几种" into 卡分); "宝鸡有吗" and
        # "咸阳能办口岸卡吗" ask about the place's branch.
        chars = set("".join(doc.bigrams))
        asks_more = any(w not in self._vocabulary and w not in places and not set(w) & chars for w in words)
        return bool(covered) and asks_more and all(w in places for w in covered)

    @cached_property
    def _index_of(self) -> dict[str, int]:
        return {d.entry.id: i for i, d in enumerate(self._docs)}

    @cached_property
    def _place_set(self) -> frozenset[str]:
        # Places only: a region's aliases include its bank (建行, in every branch's name beside
        # the branch's city and district), which a question may well ask about.
        names = {normalize(n) for n in self.place_names()} | {n for ns in self._region_names.values() for n in ns}
        rests = [
            normalize(e.name).replace(normalize(e.city), " ").replace(normalize(e.district), " ")
            for e in self.kb.entries
            if isinstance(e, BranchEntry)
        ]
        return frozenset(n for n in names if not any(n in rest for rest in rests))

    def unknown_codes(self, text: str) -> list[str]:
        """Codes of four to six digits in ``text`` that no entry has ("9710和9810模式怎么申报":
        the manuals know 9610 and 1210 only); not years."""
        found = []
        for m in _CODE_NUMBER.finditer(normalize(text)):
            number = m.group(1)
            if number not in self._numbers and not _YEAR.fullmatch(number) and m.group(2) != "年":
                found.append(number)
        return found

    @cached_property
    def _numbers(self) -> frozenset[str]:
        return frozenset(
            n for d in self._docs for text, _weight in search_texts(d.entry) for n in re.findall(r"\d+", text or "")
        )

    def document_frequency(self, word: str) -> int:
        """How many entries use ``word`` (0 for a word none does)."""
        present = self._has_word.get(word)
        return int(present.sum()) if present is not None else 0

    def place_words(self, text: str) -> list[str]:
        """The region aliases (provinces, cities, districts, zones) written in ``text``."""
        norm = normalize(text)
        found: list[str] = []
        for alias, _key in self._aliases:
            if alias in norm and not any(alias in f for f in found):
                found.append(alias)
        return found

    def region_of_terms(self, text: str) -> str | None:
        """The region whose manual alone uses the question's specific words (总署统一版,
        制发卡及数字证书服务系统, 领卡), when the other manual uses none of them.

        A word counts by its IDF when at least ``_OWN_TERM_ENTRIES`` entries of that region use
        it (a word of one entry is there by chance); ``_OWN_TERMS_MIN`` of weight is needed.
        """
        weight = dict.fromkeys(self._in_region, 0.0)
        for w in dict.fromkeys(self.tok.words(text, search_mode=False)):
            present = self._has_word.get(w)
            # Terms, not everyday words that one manual happens to use more ("要求").
            if present is None or len(w) < 2 or (len(w) < 3 and w not in self._domain):
                continue
            counts = {key: int((present & mask).sum()) for key, mask in self._in_region.items()}
            owners = [key for key, n in counts.items() if n]
            # A word of one or two entries is there by chance ("能办"); a term is used throughout.
            if len(owners) == 1 and counts[owners[0]] >= _OWN_TERM_ENTRIES:
                weight[owners[0]] += self._idf(w)
        strong = [key for key, wt in weight.items() if wt >= _OWN_TERMS_MIN]
        others = [key for key, wt in weight.items() if wt > 0 and key not in strong]
        return strong[0] if len(strong) == 1 and not others else None

    # ------------------------------------------------------------------ search
    def _word_column(self, w: str, story: bool = False) -> tuple[float, np.ndarray]:
        """A question word's IDF and what it adds to each document's coverage (its IDF where
        the document has it, a share of it where the document has its character bigrams: a
        compound written another way; a region's own name is implied by its entries).
        Cached: the same words come back in every view of a message and in many messages."""
        cached = self._columns.get((w, story))
        if cached is not None:
            return cached
        idf = self._idf(w, story)
        present = self._has_word.get(w, self._none) | self._named_region.get(w, self._none)
        if len(w) >= 2 and not w.isascii():
            grams = [w[j : j + 2] for j in range(len(w) - 1)]
            share = sum(self._has_bigram.get(g, self._none).astype(np.float64) for g in grams) / len(grams)
            column = np.where(present, idf, idf * 0.6 * share)
        else:
            column = np.where(present, idf, 0.0)
        if len(self._columns) >= _COLUMN_CACHE:
            self._columns.clear()
        self._columns[(w, story)] = (idf, column)
        return idf, column

    def _idf(self, word: str, story: bool = False) -> float:
        idf = self._bm25_words.idf.get(word)
        if idf is not None:
            return max(float(idf), 0.05)
        if not story:
            return float(self._max_idf)
        # A word no entry uses, in a long message: the more common in Chinese at large, the
        # more likely it is the story around the question ("老师", "懵", "大促"), not what
        # it asks ("9710"). In a short message every word is the question.
        return float(self._max_idf) * self.tok.unknown_weight(word)

    def _bigram_idf(self, bigram: str) -> float:
        return max(float(self._bm25_bigrams.idf.get(bigram, self._max_bigram_idf)), 0.05)

    def search(self, text: str, region: str | None = None, k: int | None = 5, views: Sequence[str] = ()) -> list[Hit]:
        """The ``k`` best entries for ``text`` (all when ``k`` is None), restricted to ``region``.

        ``views`` are parts of ``text`` that may say better what it asks (its question
        clause without the story before it); each entry keeps its best view's score.
        """
        scored = self._score_views(text, views)
        if scored is None:
            return []
        score, confidence = scored
        shown = np.flatnonzero(self._in_region.get(region, self._none)) if region else np.arange(len(self._docs))
        order = shown[np.argsort(-score[shown], kind="stable")]  # ties keep the documents' order
        return self._hits(order if k is None else order[:k], score, confidence)

    def shortlist(self, text: str, k: int = SHORTLIST, views: Sequence[str] = ()) -> list[Hit]:
        """The ``k`` best entries overall and the ``k`` best of each region, best first:
        all that a later top-``k`` of one region needs, without a hit for every entry."""
        scored = self._score_views(text, views)
        if scored is None:
            return []
        score, confidence = scored
        order = np.argsort(-score, kind="stable")
        keep = np.zeros(len(order), dtype=bool)
        keep[:k] = True
        for in_region in self._in_region.values():
            keep[np.flatnonzero(in_region[order])[:k]] = True
        return self._hits(order[keep], score, confidence)

    def _hits(self, order: np.ndarray, score: np.ndarray, confidence: np.ndarray) -> list[Hit]:
        capped = np.minimum(confidence[order], 1.0).tolist()
        return [
            Hit(self._docs[i].entry, s, round(c, 4))
            for i, s, c in zip(order.tolist(), score[order].tolist(), capped, strict=True)
        ]

    def _score_views(self, text: str, views: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        # A part of a long message is still read as a part of a story.
        story = len(self.tok.canonical(text)) >= _STORY_LENGTH
        words = self._query_words(text)
        best = self._score(text, story, words)
        topic = self._topic_words(words) if views else set()
        for view in views:
            if view == text:
                continue
            view_words = self._query_words(view)
            scored = self._score(view, story, view_words)
            if scored is None:
                continue
            # A part of the message is judged a little below the whole: when both fit, the
            # whole (with its context, "我有电子口岸卡，怎么注册") says better which entry. A part
            # that kept none of the message's specific words ("…入驻平台…遇到问题了，应该打
            # 哪个电话问" -> "应该打哪个电话问") has lost what it is about: judged lower still.
            discount = _VIEW_DISCOUNT if not topic or topic & self._topic_words(view_words) else _TOPICLESS_DISCOUNT
            scored = (scored[0] * discount, scored[1] * discount)
            best = scored if best is None else (np.maximum(best[0], scored[0]), np.maximum(best[1], scored[1]))
        return best

    def _query_words(self, text: str) -> tuple[str, list[str]]:
        """A question's canonical text and its words (precise mode), cut once per text."""
        canonical = self.tok.canonical(text)
        return canonical, list(dict.fromkeys(self.tok.words(canonical, canonical=False, search_mode=False)))

    def _topic_words(self, words: tuple[str, list[str]]) -> set[str]:
        """The words that few entries use (a fifth at most): what the text is about."""
        n = len(self._docs)
        return {w for w in words[1] if len(w) >= 2 and 0 < self.document_frequency(w) * 5 < n}

    def _score(
        self, text: str, story: bool | None = None, words: tuple[str, list[str]] | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Every document's ranking score and answer confidence for ``text`` (None: nothing
        in it to look up); ``story``: whether it is (a part of) a long message; ``words``:
        its canonical text and words when already cut."""
        canonical, q_words = words or self._query_words(text)
        q_bigrams = list(dict.fromkeys(self.tok.bigrams(canonical, canonical=False)))
        if not q_bigrams and not any(len(w) >= 3 or (w.isalpha() and len(w) >= 2) for w in q_words):
            return None  # nothing to look up: punctuation, a lone digit ("2"), a stray letter
        n = len(self._docs)
        word_scores = self._words_bm25.scores(q_words)
        bigram_scores = self._bigrams_bm25.scores(q_bigrams)
        top_word = max(float(word_scores.max()), 1e-9)
        top_bigram = max(float(bigram_scores.max()), 1e-9)

        # Coverage: the IDF-weighted share of the question's words a document has. A word
        # it lacks counts in part when it has the word's character bigrams (a compound
        # written another way); a region's own name is implied by that region's entries.
        if story is None:
            story = len(canonical) >= _STORY_LENGTH
        columns = [self._word_column(w, story) for w in q_words]
        total = sum(idf for idf, _ in columns)
        covered = np.zeros(n)
        for _idf, column in columns:
            covered += column
        word_cov = covered / total if total else covered
        b_idf = [(b, self._bigram_idf(b)) for b in q_bigrams]
        b_total = sum(idf for _, idf in b_idf)
        if b_total:
            b_covered = np.zeros(n)
            for b, idf in b_idf:
                b_covered += np.where(self._has_bigram.get(b, self._none), idf, 0.0)
            b_cov = b_covered / b_total
        else:
            b_cov = word_cov
        fuzzy = np.zeros(n)
        if self._phrases:
            ratios = process.cdist([canonical], self._phrases, scorer=fuzz.ratio, dtype=np.float64)[0]
            np.maximum.at(fuzzy, self._phrase_owner, ratios / 100.0)

        confidence = 0.5 * word_cov + 0.3 * b_cov + 0.2 * fuzzy
        named = np.zeros(n)
        for name, owners in self._about:
            if name in canonical:
                named = np.maximum(named, owners * _NAMED_BONUS)
        confidence = confidence + named
        confidence = np.where(fuzzy >= 0.85, np.maximum(confidence, fuzzy), confidence)
        score = confidence + 0.25 * (word_scores / top_word) + 0.15 * (bigram_scores / top_bigram)
        return score, confidence


class _Postings:
    """BM25 (Okapi, as ``rank_bm25`` computes it) over term postings: a query costs one
    small array operation per term instead of a Python loop over every document."""

    def __init__(self, bm25: BM25Okapi) -> None:
        self.n = bm25.corpus_size
        self.idf: dict[str, float] = bm25.idf
        doc_len = np.array(bm25.doc_len)
        self.norm = bm25.k1 * (1 - bm25.b + bm25.b * doc_len / bm25.avgdl)
        self.k1 = bm25.k1
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, freqs in enumerate(bm25.doc_freqs):
            for term, tf in freqs.items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(i)
                tfs.append(tf)
        self.postings = {
            t: (np.array(d, dtype=np.intp), np.array(f, dtype=np.float64)) for t, (d, f) in postings.items()
        }

    def scores(self, query: Iterable[str]) -> np.ndarray:
        score = np.zeros(self.n)
        for term in query:
            if term not in self.postings:
                continue
            docs, tf = self.postings[term]
            score[docs] += (self.idf.get(term) or 0) * (tf * (self.k1 + 1) / (tf + self.norm[docs]))
        return score


def _mask(n: int, owners: set[int]) -> np.ndarray:
    mask = np.zeros(n)
    mask[list(owners)] = 1.0
    return mask


def _incidence(n: int, sets: Iterable[set[str]]) -> dict[str, np.ndarray]:
    """Term -> which of the ``n`` documents contain it (a boolean array)."""
    rows: dict[str, np.ndarray] = {}
    for i, terms in enumerate(sets):
        for term in terms:
            if term not in rows:
                rows[term] = np.zeros(n, dtype=bool)
            rows[term][i] = True
    return rows


@cache
def default_retriever() -> Retriever:
    """The retriever over the packaged knowledge base, built once per process."""
    kb = load_default()
    tok = Tokenizer(load_lexicon(DATA_DIR / "lexicon.yaml"), domain_words(kb))
    return Retriever(kb, tok)
