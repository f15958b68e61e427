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

import numpy as np

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
        # Every intent is as likely beforehand: the FAQ class has far more examples, which
        # says how much the manuals cover, not how often people give commands.
        self._intents = list(self._counts)
        vocabulary = sorted({f for counts in self._counts.values() for f in counts})
        self._feature = {f: i for i, f in enumerate(vocabulary)}
        size = len(vocabulary) + 1
        # log P(feature | intent), Laplace-smoothed: one row per feature, one column per
        # intent, so that a text is scored by summing a few rows (numpy) rather than a
        # Python loop over every intent and feature.
        self._logp = np.empty((len(vocabulary), len(self._intents)))
        for j, intent in enumerate(self._intents):
            counts = self._counts[intent]
            total = sum(counts.values())
            column = np.array([counts.get(f, 0) for f in vocabulary], dtype=np.float64)
            self._logp[:, j] = np.log((column + 1) / (total + size))
        self._prior = np.full(len(self._intents), math.log(1 / len(docs)))

    def classify(self, text: str) -> tuple[str, float]:
        """The most likely intent and its posterior probability (``faq`` for a question)."""
        rows = [self._feature[f] for f in _features(text) if f in self._feature]
        if not rows:
            return FAQ, 0.0
        logp = self._prior + self._logp[rows].sum(axis=0)
        best = int(np.argmax(logp))
        norm = float(np.exp(logp - logp[best]).sum())
        return self._intents[best], 1 / norm
