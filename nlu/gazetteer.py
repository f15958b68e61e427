"""The entity words both NLU engines share (``nlu/data/entities.yaml``).

The lexical engine extracts entities by matching these words; the Rasa export uses the same
words to annotate its training examples and to write synonyms and lookup tables, so the two
engines agree on what a region, a city or a card type is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from knowledge.text import normalize

__all__ = ["ENTITIES_FILE", "EntityValue", "Gazetteer", "Mention", "default_gazetteer", "load_gazetteer"]

ENTITIES_FILE = Path(__file__).resolve().parent / "data" / "entities.yaml"


class EntityValue(BaseModel):
    """One canonical value of an entity and the words that mean it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words: tuple[str, ...] = Field(min_length=1)
    region: str | None = None


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, dict[str, EntityValue]]


@dataclass(frozen=True)
class Mention:
    """An entity found in a text: ``text[start:end]`` is the word, ``value`` its canonical form."""

    entity: str
    value: str
    start: int
    end: int
    word: str


@dataclass(frozen=True)
class _Word:
    word: str
    entity: str
    value: str
    pattern: re.Pattern[str]


class Gazetteer:
    """Longest-match lookup of entity words in a text."""

    def __init__(self, entities: dict[str, dict[str, EntityValue]]) -> None:
        self.entities = entities
        words: list[_Word] = []
        for entity, values in entities.items():
            for value, spec in values.items():
                for word in spec.words:
                    w = normalize(word)
                    # ASCII words must stand alone ("api" not inside "rapid"); CJK words cannot.
                    pat = rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])" if w.isascii() else re.escape(w)
                    words.append(_Word(w, entity, value, re.compile(pat)))
        self._words = sorted(words, key=lambda w: -len(w.word))

    @property
    def names(self) -> list[str]:
        return list(self.entities)

    def region_of(self, entity: str, value: str) -> str | None:
        """The region a region, city or district value places a question in."""
        if entity == "region":
            return value if value in self.entities["region"] else None
        spec = self.entities.get(entity, {}).get(value)
        return spec.region if spec else None

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in ``text``, longest words first, in text order.

        Matching is on the normalised text (NFKC, lower case, one space). Offsets refer to
        ``text`` when normalising kept its length, which it does for the CJK and ASCII text
        of training examples, and to the normalised text otherwise.
        """
        norm = normalize(text)
        source = text if len(norm) == len(text) else norm
        taken = [False] * len(norm)
        found: list[Mention] = []
        for w in self._words:
            if w.word not in norm:  # a plain substring test first: most words are absent
                continue
            for m in w.pattern.finditer(norm):
                if any(taken[m.start() : m.end()]):
                    continue
                for i in range(m.start(), m.end()):
                    taken[i] = True
                found.append(Mention(w.entity, w.value, m.start(), m.end(), source[m.start() : m.end()]))
        return sorted(found, key=lambda m: m.start)

    def values(self, text: str) -> dict[str, str]:
        """The first value of each entity mentioned in ``text``."""
        out: dict[str, str] = {}
        for mention in self.find(text):
            out.setdefault(mention.entity, mention.value)
        return out


def load_gazetteer(path: Path = ENTITIES_FILE) -> Gazetteer:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Gazetteer(_File.model_validate(raw).entities)


@cache
def default_gazetteer() -> Gazetteer:
    return load_gazetteer()
