"""Conversation state: everything the core remembers between events.

It is a plain pydantic model serialised to JSON in the database after every event, so any
bot process can pick up any conversation. Later features (walkthrough progress, form
fields, handoff) add fields here with defaults, so stored states stay readable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["ConversationState", "Turn"]

HISTORY_LIMIT = 20


class Turn(BaseModel):
    role: Literal["user", "bot"]
    text: str


class ConversationState(BaseModel):
    region: str | None = None
    lang: Literal["zh", "en"] = "zh"
    fallback_streak: int = 0
    # A question answered for both regions, re-answered once the user picks one.
    pending_question: str | None = None
    history: list[Turn] = Field(default_factory=list)

    def remember(self, role: Literal["user", "bot"], text: str) -> None:
        self.history.append(Turn(role=role, text=text[:2000]))
        del self.history[:-HISTORY_LIMIT]
