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
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
from rank_bm25 import BM25Okapi
from rapidfuzz import fuzz, process

from knowledge.loader import DATA_DIR, KnowledgeBase, load_default
from knowledge.render import search_texts
from knowledge.schema import BranchEntry, Entry, TermEntry
from knowledge.text import Tokenizer, load_lexicon, normalize

__all__ = ["Hit", "Retriever", "default_retriever", "domain_words"]


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

    # ------------------------------------------------------------------ regions
    def detect_region(self, text: str) -> str | None:
        """The region a question names (province, city, district or system), if exactly one."""
        norm = normalize(text)
        found = set()
        for alias, key in self._aliases:
            if alias.isascii():
                if re.search(rf"\b{re.escape(alias)}\b", norm):
                    found.add(key)
            elif alias in norm:
                found.add(key)
        return found.pop() if len(found) == 1 else None

    def unknown_places(self, text: str) -> list[str]:
        """Places the question names that no entry and no region knows ("上海海关", "深圳").

        The manuals cover Shaanxi and Zhuhai only, so such a question is about somewhere
        else and must not be answered with a Shaanxi or Zhuhai fact that happens to match
        its other words.
        """
        known = self._vocabulary
        return [
            p
            for p in self.tok.places(text)
            if p not in known and not any(p in alias or alias in p for alias, _ in self._aliases)
        ]

    # ------------------------------------------------------------------ search
    def _idf(self, word: str) -> float:
        return max(float(self._bm25_words.idf.get(word, self._max_idf)), 0.05)

    def _bigram_idf(self, bigram: str) -> float:
        return max(float(self._bm25_bigrams.idf.get(bigram, self._max_bigram_idf)), 0.05)

    def search(self, text: str, region: str | None = None, k: int | None = 5) -> list[Hit]:
        """The ``k`` best entries for ``text`` (all when ``k`` is None), restricted to ``region``."""
        canonical = self.tok.canonical(text)
        q_words = list(dict.fromkeys(self.tok.words(text, search_mode=False)))
        q_bigrams = list(dict.fromkeys(self.tok.bigrams(text)))
        if not q_bigrams and not any(len(w) >= 3 or (w.isalpha() and len(w) >= 2) for w in q_words):
            return []  # nothing to look up: punctuation, a lone digit ("2"), a stray letter
        word_scores = self._bm25_words.get_scores(q_words) if q_words else [0.0] * len(self._docs)
        bigram_scores = self._bm25_bigrams.get_scores(q_bigrams) if q_bigrams else [0.0] * len(self._docs)
        top_word = max(max(word_scores), 1e-9)
        top_bigram = max(max(bigram_scores), 1e-9)

        # Per-question constants, computed once rather than once per document.
        w_idf = [(w, self._idf(w)) for w in q_words]
        w_grams = {w: [w[j : j + 2] for j in range(len(w) - 1)] for w in q_words if len(w) >= 2 and not w.isascii()}
        total = sum(idf for _, idf in w_idf)
        b_idf = [(b, self._bigram_idf(b)) for b in q_bigrams]
        b_total = sum(idf for _, idf in b_idf)
        fuzzy = np.zeros(len(self._docs))
        if self._phrases:
            ratios = process.cdist([canonical], self._phrases, scorer=fuzz.ratio, dtype=np.float64)[0]
            np.maximum.at(fuzzy, self._phrase_owner, ratios / 100.0)

        hits: list[Hit] = []
        for i, doc in enumerate(self._docs):
            entry = doc.entry
            if region and entry.region != region:
                continue
            implicit = self._region_names.get(entry.region, set())
            covered = 0.0
            for w, idf in w_idf:
                if w in doc.words or w in implicit:
                    covered += idf
                elif w in w_grams:
                    grams = w_grams[w]
                    share = sum(g in doc.bigrams for g in grams) / len(grams)
                    covered += idf * 0.6 * share
            word_cov = covered / total if total else 0.0
            b_cov = sum(idf for b, idf in b_idf if b in doc.bigrams) / b_total if b_total else word_cov
            fz = float(fuzzy[i])
            confidence = 0.5 * word_cov + 0.3 * b_cov + 0.2 * fz
            if fz >= 0.85:
                confidence = max(confidence, fz)
            score = confidence + 0.25 * (word_scores[i] / top_word) + 0.15 * (bigram_scores[i] / top_bigram)
            hits.append(Hit(entry, float(score), round(float(min(1.0, confidence)), 4)))
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits if k is None else hits[:k]


@cache
def default_retriever() -> Retriever:
    """The retriever over the packaged knowledge base, built once per process."""
    kb = load_default()
    tok = Tokenizer(load_lexicon(DATA_DIR / "lexicon.yaml"), domain_words(kb))
    return Retriever(kb, tok)
