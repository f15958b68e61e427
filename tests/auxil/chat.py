"""Driving one conversation through the pure dialogue core, as a user would."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.events import ButtonPress, TextMessage, Timer
from bot.core.state import ConversationState

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


class Walk:
    """Drives one conversation; ``press`` finds a button by label in the last replies."""

    def __init__(self, dialogue, lexical, at=T0):
        self.dialogue, self.lexical, self.at = dialogue, lexical, at
        self.state = ConversationState()
        self.replies = []

    def say(self, text):
        out = self.dialogue.handle(self.state, TextMessage(text, at=self.at), self.lexical.parse_sync(text))
        return self._keep(out)

    def press(self, label):
        payload = next(b.payload for r in self.replies for b in r.buttons if b.label == label)
        return self._keep(self.dialogue.handle(self.state, ButtonPress(payload, at=self.at)))

    def event(self, event):
        """Any other core event (a card agent's report, a pairing code)."""
        return self._keep(self.dialogue.handle(self.state, event))

    def fire(self, key):
        return self._keep(self.dialogue.handle(self.state, Timer(key, at=self.at)))

    def _keep(self, out):
        self.state, self.replies = out.state, out.replies
        return "\n".join(r.text for r in out.replies)

    def buttons(self):
        return [b.label for r in self.replies for b in r.buttons]


def zhuhai_ticket_submitted(at):
    """Events of a Zhuhai walkthrough that reaches local filing with both milestones
    reported: it leaves three reminders (two milestones, one idle nudge)."""
    return (
        TextMessage("开始办理珠海的入网", at=at),
        ButtonPress("wt:choice:customs_code:has_code", at=at),
        ButtonPress("wt:choice:agent:agent", at=at),
        ButtonPress("wt:ms:cs_account_registered", at=at),
        ButtonPress("wt:ms:local_ticket_submitted", at=at),
    )
