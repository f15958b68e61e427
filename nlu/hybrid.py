"""Rank knowledge entries for a question with the lexical retriever, Rasa, or both.

The two engines fail differently. The retriever knows every word of every entry and how
much of a question an entry covers, which makes its confidence a good reason to answer or
not; it is weak on paraphrases that share few words with the entry. Rasa's response
selector learned the paraphrases, but its ranking says little about whether the question is
in scope at all. The hybrid ranks by the retriever's score plus Rasa's confidence in the
entry, answers on the retriever's coverage raised by Rasa's confidence, and lets Rasa's
out-of-scope verdict veto a weakly covered answer. The weights were chosen on the project's
question sets; ``bench/nlu_compare.py`` prints all three strategies side by side.
"""

from __future__ import annotations

from typing import Literal

from knowledge.index import SHORTLIST, Hit, Retriever
from nlu.cues import default_cues
from nlu.interpreter import OUT_OF_SCOPE, Understanding

__all__ = ["OUT_OF_SCOPE_VETO", "RASA_CONFIDENCE_WEIGHT", "RASA_SCORE_WEIGHT", "STRATEGIES", "Strategy", "rank"]

Strategy = Literal["lexical", "rasa", "hybrid"]
STRATEGIES: tuple[Strategy, ...] = ("lexical", "rasa", "hybrid")

# Rasa's confidence in an entry, added to the retriever's ranking score...
RASA_SCORE_WEIGHT = 0.4
# ...and to the retriever's coverage when deciding whether to answer.
RASA_CONFIDENCE_WEIGHT = 0.4
# When Rasa says "out of scope", an answer needs at least this much confidence.
OUT_OF_SCOPE_VETO = 0.5


def _rasa_only(retriever: Retriever, region: str | None, nlu: Understanding) -> list[Hit]:
    """Rasa as it was built to work: its intent decides, its response selector chooses."""
    answers = nlu.is_faq
    hits: list[Hit] = []
    for entry_id, confidence in nlu.faq_ranking:
        entry = retriever.kb.by_id.get(entry_id)
        if entry is None or (region and entry.region != region):
            continue
        hits.append(Hit(entry, confidence, 1.0 if answers else 0.0))
    return hits


def rank(
    question: str,
    retriever: Retriever,
    *,
    region: str | None = None,
    nlu: Understanding | None = None,
    strategy: Strategy = "hybrid",
    k: int = SHORTLIST,
) -> list[Hit]:
    """The ``k`` best entries, best first; ``Hit.confidence`` decides whether to answer.

    Without Rasa's reading of the question (no ``nlu``, or one from the lexical engine)
    every strategy is the lexical one.
    """
    has_rasa = nlu is not None and nlu.engine == "rasa"
    if strategy == "rasa" and has_rasa and nlu is not None:
        return _rasa_only(retriever, region, nlu)[:k]
    if nlu is not None and nlu.hits and nlu.query == question and k <= SHORTLIST:
        # The lexical engine ranked this very text already (its shortlist covers every region).
        lexical = [h for h in nlu.hits if not region or h.entry.region == region]
    else:
        lexical = retriever.search(
            question, region, k=None if has_rasa else k, views=default_cues().views(question, retriever.known_words)
        )
    if strategy == "lexical" or not has_rasa or nlu is None:
        return lexical[:k]
    # Rasa learned its entries from Chinese examples (an entry's English title at most), so
    # its ranking of an English question is noise; its out-of-scope verdict still counts.
    prior = dict(nlu.faq_ranking) if nlu.lang != "en" else {}
    veto = nlu.intent == OUT_OF_SCOPE
    combined: list[Hit] = []
    for hit in lexical:
        p = prior.get(hit.entry.id, 0.0)
        confidence = min(1.0, hit.confidence + RASA_CONFIDENCE_WEIGHT * p)
        if veto and confidence < OUT_OF_SCOPE_VETO:
            confidence = 0.0
        combined.append(Hit(hit.entry, hit.score + RASA_SCORE_WEIGHT * p, round(confidence, 4)))
    combined.sort(key=lambda h: h.score, reverse=True)
    return combined[:k]
