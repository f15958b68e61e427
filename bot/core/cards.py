"""The card agent in the conversation: pairing, card events, "我的卡插好了吗".

The agent on the user's PC reports what PC/SC sees; ``bot.cardlink`` checks each report
and hands it to the core as an ``AgentReport``. Here it becomes the conversation's
``CardStatus`` and, where it matters, a message: a card put in or taken out is always
told (the user is at the PC, doing something with it); at a walkthrough step done with a
card (``Step.card`` in the procedure data) an inserted card is confirmed with an offer to
go on, and a removed card or reader is a warning. An agent gone silent is told only at
such a step, where it matters. Questions about the card are answered from the last status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.events import AgentReport, CardChange, PairingCode
from bot.core.messages import Messages
from bot.core.replies import Button, Reply
from bot.core.state import CardStatus, ConversationState
from bot.core.walkthrough import CHINA_TZ, Walkthroughs
from bot.core.walkthrough import PREFIX as WT_PREFIX
from knowledge.procedure import matches

__all__ = ["Cards", "StepCard"]

# Message keys (cd.*) of the change kinds, where they differ; kinds told differently at a card step.
_KEYS = {"card_inserted": "inserted", "card_removed": "removed"}
_AT_STEP = frozenset({"card_inserted", "card_removed", "reader_removed"})


@dataclass(frozen=True)
class StepCard:
    """The walkthrough step the user is at (its title) and the card it is done with."""

    title: str
    card: str


def _clock(at: datetime) -> str:
    return at.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")


class Cards:
    """Card-agent replies for every conversation; holds no per-conversation data."""

    def __init__(self, messages: Messages, walkthroughs: Walkthroughs) -> None:
        self.msg = messages
        self.wt = walkthroughs

    def _m(self, state: ConversationState, key: str, **values: object) -> str:
        return self.msg.get(f"cd.{key}", state.lang, **{k: str(v) for k, v in values.items()})

    # ------------------------------------------------------------------ where the user is
    def step_card(self, state: ConversationState) -> StepCard | None:
        """The current walkthrough step, if it is done with a card (given the user's answers)."""
        if not self.wt.active(state):
            return None
        proc, prog = self.wt.procedure(state), state.progress()
        if proc is None or prog is None or prog.current is None:
            return None
        step = proc.step(prog.current)
        cards = [item.get(state.lang) for item in step.card if matches(item.when, prog.answers)]
        if not cards:
            return None
        return StepCard(step.title.get(state.lang), cards[0])

    def _step_buttons(self, state: ConversationState) -> tuple[Button, ...]:
        return (
            Button(self._m(state, "buttons.step_done"), f"{WT_PREFIX}done"),
            Button(self._m(state, "buttons.show_step"), f"{WT_PREFIX}resume"),
        )

    # ------------------------------------------------------------------ pairing
    def pairing_code(self, state: ConversationState, event: PairingCode) -> list[Reply]:
        minutes = max(1, round((event.expires_at - event.at) / timedelta(minutes=1)))
        code = f"{event.code[:4]}-{event.code[4:]}"  # as cardagent.protocol.format_code
        until = event.expires_at.astimezone(CHINA_TZ).strftime("%H:%M")
        return [Reply(self._m(state, "pair_code", code=code, server=event.server, until=until, minutes=minutes))]

    def how_to_pair(self, state: ConversationState) -> list[Reply]:
        if state.card is not None:
            return [Reply(self._m(state, "already_paired", name=state.card.agent))]
        return [Reply(self._m(state, "not_paired"))]

    def unavailable(self, state: ConversationState) -> list[Reply]:
        return [Reply(self._m(state, "pair_unavailable"))]

    # ------------------------------------------------------------------ reports
    def report(self, state: ConversationState, event: AgentReport) -> list[Reply]:
        """Take the agent's news into the state; say what the user should know."""
        if event.kind == "unpaired":
            state.card = None
            if not event.agent:
                return [Reply(self._m(state, "unpaired_none"))]
            return [Reply(self._m(state, "unpaired", name=event.agent))]
        if event.kind == "paired":
            state.card = CardStatus(agent=event.agent, paired_at=event.at, seen_at=event.at)
            text = self._m(state, "paired", name=event.agent)
            if event.replaced:
                text += "\n" + self._m(state, "replaced", names="、".join(event.replaced))
            return [Reply(text)]
        card = state.card
        if card is None or card.agent != event.agent:
            # A report from an agent this conversation does not know (paired elsewhere, or
            # its state was reset): take it as the status, say nothing of changes.
            card = state.card = CardStatus(agent=event.agent, paired_at=event.at)
        if event.kind == "offline":
            card.online = False
            step = self.step_card(state)
            if step is None:
                return []
            card.offline_told = True
            return [Reply(self._m(state, "offline_step", name=card.agent, step=step.title, card=step.card))]
        lines: list[str] = []
        if not card.online and card.offline_told:
            lines.append(self._m(state, "online_again", name=card.agent))
        card.online, card.offline_told, card.seen_at = True, False, event.at
        card.service, card.error = event.service, event.error
        card.readers = [(r.name, r.card, r.atr) for r in event.readers]
        step = self.step_card(state)
        buttons: tuple[Button, ...] = ()
        for change in event.changes:
            line, offer = self._change(state, change, step)
            if line:
                lines.append(line)
            if offer:
                buttons = self._step_buttons(state)
        if event.late:
            lines.append(self._m(state, "late", name=card.agent, n=event.late))
            lines.extend(self._status_lines(state, card))
        if not lines:
            return []
        return [Reply("\n".join(lines), buttons)]

    def _change(self, state: ConversationState, change: CardChange, step: StepCard | None) -> tuple[str, bool]:
        """A change as a line, and whether it offers to go on with the step. At a card step
        the card's and reader's comings and goings have their own texts (``<key>_step``)."""
        key = _KEYS.get(change.kind, change.kind)
        if step is not None and change.kind in _AT_STEP:
            line = self._m(state, f"{key}_step", reader=change.reader, step=step.title, card=step.card)
            return line, change.kind == "card_inserted"
        name = state.card.agent if state.card else ""
        return self._m(state, key, reader=change.reader, name=name), False

    # ------------------------------------------------------------------ questions
    def _status_lines(self, state: ConversationState, card: CardStatus) -> list[str]:
        if not card.service:
            return [self._m(state, "no_service", name=card.agent, error=card.error or "?")]
        if not card.readers:
            return [self._m(state, "no_reader", name=card.agent)]
        return [
            self._m(state, "card_in" if present else "card_out", reader=name) for name, present, _atr in card.readers
        ]

    def question(self, state: ConversationState) -> list[Reply]:
        """ "我的卡插好了吗": from the last status, or how to get one."""
        card = state.card
        if card is None:
            return [Reply(self._m(state, "not_paired"))]
        lines: list[str] = []
        if not card.online:
            seen = _clock(card.seen_at) if card.seen_at else "?"
            lines.append(self._m(state, "offline", name=card.agent, seen=seen))
        lines.extend(self._status_lines(state, card))
        step = self.step_card(state)
        ready = card.online and card.service and any(present for _n, present, _a in card.readers)
        buttons = self._step_buttons(state) if step is not None and ready else ()
        return [Reply("\n".join(lines), buttons)]

    def step_note(self, state: ConversationState) -> str | None:
        """Lines shown with a step done with a card: what it needs and what the agent sees."""
        step = self.step_card(state)
        if step is None:
            return None
        lines = [self._m(state, "step_needs", card=step.card)]
        card = state.card
        if card is None:
            lines.append(self._m(state, "step_pair"))
        elif not card.online:
            lines.append(self._m(state, "step_offline", name=card.agent))
        else:
            inside = [name for name, present, _atr in card.readers if present]
            if inside and card.service:
                lines.append(self._m(state, "step_ready", reader=inside[0]))
            else:
                lines.append(self._m(state, "step_missing", name=card.agent))
        return "\n".join(lines)
