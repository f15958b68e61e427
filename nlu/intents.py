"""A dialogue-intent classifier learned from the intents' examples (Naive Bayes on characters).

The lexical engine's fuzzy match recognises a command written close to one of its examples;
people say "带我走一下流程吧" or "这一步弄好啦", which are near no single example but share
their characters with the intent's examples taken together. This classifier learns that from
the same examples Rasa trains on, with the knowledge base's own sample questions as one more
class (``faq``), so that a question about a step is not read as a command about it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping

from knowledge.text import normalize

__all__ = ["IntentClassifier"]

FAQ = "faq"


def _features(text: str) -> list[str]:
    """Characters and character bigrams of the folded text (words for English)."""
    folded = "".join(ch for ch in normalize(text).lower() if ch.isalnum() or ch == " ")
    if folded.isascii():
        words = folded.split()
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    chars = folded.replace(" ", "")
    return list(chars) + [chars[i : i + 2] for i in range(len(chars) - 1)]


class IntentClassifier:
    """Multinomial Naive Bayes over character uni- and bigrams, one class per intent."""

    def __init__(self, examples: Mapping[str, Iterable[str]], questions: Iterable[str]) -> None:
        self._counts: dict[str, Counter[str]] = {}
        docs: Counter[str] = Counter()
        for intent, texts in {**examples, FAQ: questions}.items():
            counts = self._counts.setdefault(intent, Counter())
            for text in texts:
                counts.update(_features(text))
                docs[intent] += 1
        self._vocabulary = {f for counts in self._counts.values() for f in counts}
        total = sum(docs.values())
        # Every intent is as likely beforehand: the FAQ class has far more examples, which
        # says how much the manuals cover, not how often people give commands.
        self._prior = {intent: math.log(1 / len(docs)) for intent in docs}
        self._total = {intent: sum(c.values()) for intent, c in self._counts.items()}
        self._size = len(self._vocabulary) + 1
        del total

    def classify(self, text: str) -> tuple[str, float]:
        """The most likely intent and its posterior probability (``faq`` for a question)."""
        feats = [f for f in _features(text) if f in self._vocabulary]
        if not feats:
            return FAQ, 0.0
        logp = {
            intent: self._prior[intent]
            + sum(math.log((counts[f] + 1) / (self._total[intent] + self._size)) for f in feats)
            for intent, counts in self._counts.items()
        }
        best = max(logp, key=logp.__getitem__)
        top = logp[best]
        norm = sum(math.exp(v - top) for v in logp.values())
        return best, 1 / norm
