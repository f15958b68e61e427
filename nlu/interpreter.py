"""What every NLU engine returns, and the protocol the bot calls.

The bot does not care which engine understood a message; it gets an ``Understanding``
with the intent, its confidence, the entities and the name of the engine, so answers
can report which engine answered and the bot can fall back from one engine to another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from knowledge.index import Hit

__all__ = ["FAQ_INTENT", "OUT_OF_SCOPE", "Interpreter", "Understanding"]

# Knowledge questions; the retrieval intent of an answered question is "faq/<entry id>".
FAQ_INTENT = "faq"
# Questions about something the manuals do not cover (and Rasa's own fallback intent).
OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Understanding:
    """One engine's reading of one message.

    ``faq_ranking`` holds the engine's knowledge-entry candidates, best first, as
    ``(entry id, confidence)``; the answering code combines them with the lexical retriever.
    """

    text: str
    intent: str
    confidence: float
    engine: str
    lang: str = "zh"
    entities: dict[str, str] = field(default_factory=dict)
    faq_ranking: tuple[tuple[str, float], ...] = ()
    intent_ranking: tuple[tuple[str, float], ...] = ()
    # The lexical engine's full ranking of ``text`` over all regions, kept so answering
    # the same text does not search again (filtering by region gives the same order).
    hits: tuple[Hit, ...] = field(default=(), compare=False, repr=False)
    # ``text`` as the knowledge search reads it: spelling corrected, padding removed
    # (``nlu.normalize``); empty means ``text`` itself.
    normalized: str = ""
    # ``text`` with its spelling corrected (simplified, typos) but nothing removed: what the
    # dialogue reads a command or an answer in; empty means ``text`` itself.
    spelled: str = ""

    @property
    def plain(self) -> str:
        return self.spelled or self.text

    @property
    def query(self) -> str:
        """What to search the knowledge base for."""
        return self.normalized or self.text

    @property
    def is_faq(self) -> bool:
        return self.intent == FAQ_INTENT or self.intent.startswith(FAQ_INTENT + "/")


@runtime_checkable
class Interpreter(Protocol):
    """An NLU engine: the lexical one in process, or a Rasa server."""

    @property
    def name(self) -> str:
        """Which engine answers (reported by ``ask --json`` as ``nlu``)."""
        ...

    async def parse(self, text: str) -> Understanding: ...
