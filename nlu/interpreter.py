"""What every NLU engine returns, and the protocol the bot calls.

The bot does not care which engine understood a message; it gets an ``Understanding``
with the intent, its confidence, the entities and the name of the engine, so answers
can report which engine answered and the bot can fall back from one engine to another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["FAQ_INTENT", "Interpreter", "Understanding"]

# Knowledge questions; the retrieval intent of an answered question is "faq/<entry id>".
FAQ_INTENT = "faq"


@dataclass(frozen=True)
class Understanding:
    text: str
    intent: str
    confidence: float
    engine: str
    lang: str = "zh"
    entities: dict[str, str] = field(default_factory=dict)

    @property
    def is_faq(self) -> bool:
        return self.intent == FAQ_INTENT or self.intent.startswith(FAQ_INTENT + "/")


@runtime_checkable
class Interpreter(Protocol):
    """An NLU engine: the lexical one in process, or a Rasa server."""

    name: str

    async def parse(self, text: str) -> Understanding: ...
