"""The dialogue core: (state, event, understanding) -> (new state, replies).

It is pure in the sense that matters for testing and scaling: no I/O, no transport, no
clock of its own. The caller loads the state, asks an NLU engine for the understanding of a
text, calls ``handle`` and stores the new state together with the replies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.answering import Answer, answer_question, source_line
from bot.core.events import ButtonPress, Command, Event, TextMessage
from bot.core.messages import Messages
from bot.core.replies import Button, Reply
from bot.core.state import ConversationState
from knowledge.index import Retriever
from knowledge.render import answer_lines
from knowledge.text import is_english
from nlu.hybrid import Strategy
from nlu.interpreter import Understanding

__all__ = ["Dialogue", "Outcome"]

_REGION_PREFIX = "region:"


@dataclass(frozen=True)
class Outcome:
    state: ConversationState
    replies: list[Reply]
    answer: Answer | None = None
    notes: dict[str, object] = field(default_factory=dict)


class Dialogue:
    """Decides what to say. One instance serves every conversation."""

    def __init__(self, retriever: Retriever, messages: Messages, strategy: Strategy = "hybrid") -> None:
        self.retriever = retriever
        self.kb = retriever.kb
        self.msg = messages
        self.strategy: Strategy = strategy

    # ------------------------------------------------------------------ entry point
    def handle(self, state: ConversationState, event: Event, understanding: Understanding | None = None) -> Outcome:
        state = state.model_copy(deep=True)
        if isinstance(event, Command):
            return self._command(state, event)
        if isinstance(event, ButtonPress):
            return self._button(state, event)
        return self._text(state, event, understanding)

    # ------------------------------------------------------------------ helpers
    def _buttons(self, lang: str, *keys: str) -> tuple[Button, ...]:
        return tuple(Button(self.msg.get(f"buttons.{k}", lang), k) for k in keys)

    def _region_buttons(self, lang: str) -> tuple[Button, ...]:
        return tuple(
            Button(r.name_en if lang == "en" else r.name, f"{_REGION_PREFIX}{key}")
            for key, r in self.kb.regions.items()
        )

    def _say(self, state: ConversationState, text: str, buttons: tuple[Button, ...] = ()) -> Reply:
        state.remember("bot", text)
        return Reply(text=text, buttons=buttons)

    def _hotlines(self, regions: list[str], lang: str) -> str:
        lines: list[str] = []
        for key in regions:
            entry = self.kb.get(self.kb.regions[key].hotline)
            region = self.kb.regions[key]
            lines.append(f"【{region.name_en if lang == 'en' else region.name}】")
            lines.extend(answer_lines(entry, self.kb, lang))
            lines.append(source_line(self.kb.source_label(entry, lang), lang))
        return "\n".join(lines)

    def _known_regions(self, state: ConversationState) -> list[str]:
        return [state.region] if state.region else list(self.kb.regions)

    # ------------------------------------------------------------------ commands and buttons
    def _command(self, state: ConversationState, cmd: Command) -> Outcome:
        lang = state.lang
        if cmd.name == "start":
            return Outcome(state, [self._say(state, self.msg.get("welcome", lang), self._region_buttons(lang))])
        if cmd.name == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", lang))])
        if cmd.name == "human":
            return self._human(state)
        if cmd.name == "cancel":
            state.pending_question = None
            return Outcome(state, [self._say(state, self.msg.get("cancelled", lang))])
        text = self.msg.get("unknown_command", lang, command="/" + cmd.name[:32])
        return Outcome(state, [self._say(state, text)])

    def _button(self, state: ConversationState, press: ButtonPress) -> Outcome:
        payload = press.payload
        if payload.startswith(_REGION_PREFIX) and payload[len(_REGION_PREFIX) :] in self.kb.regions:
            return self._set_region(state, payload[len(_REGION_PREFIX) :])
        if payload == "human":
            return self._human(state)
        if payload == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", state.lang))])
        return Outcome(state, [self._say(state, self.msg.get("stale_button", state.lang))])

    def _set_region(self, state: ConversationState, region: str) -> Outcome:
        state.region = region
        name = self.kb.regions[region].name_en if state.lang == "en" else self.kb.regions[region].name
        replies = [self._say(state, self.msg.get("region_set", state.lang, region=name))]
        answer = None
        if state.pending_question:
            question, state.pending_question = state.pending_question, None
            answer = answer_question(question, self.retriever, region=region, lang=state.lang)
            if not answer.fallback:
                replies.append(self._say(state, answer.text))
        return Outcome(state, replies, answer)

    def _human(self, state: ConversationState) -> Outcome:
        lang = state.lang
        text = self.msg.get("human_no_staff", lang) + "\n" + self._hotlines(self._known_regions(state), lang)
        return Outcome(state, [self._say(state, text)], notes={"handoff_requested": True})

    # ------------------------------------------------------------------ text
    def _text(self, state: ConversationState, message: TextMessage, nlu: Understanding | None) -> Outcome:
        text = message.text.strip()
        if not text:
            return Outcome(state, [self._say(state, self.msg.get("empty", state.lang))])
        state.lang = "en" if (nlu.lang == "en" if nlu else is_english(text)) else "zh"
        state.remember("user", text)
        lang = state.lang
        region_named = nlu.entities.get("region") if nlu else None
        if region_named:
            state.region = region_named

        intent = nlu.intent if nlu else "faq"
        if intent in {"greet", "thanks", "bye", "affirm", "deny"}:
            key = {"affirm": "ack", "deny": "ack"}.get(intent, intent)
            buttons = self._region_buttons(lang) if intent == "greet" and not state.region else ()
            return Outcome(state, [self._say(state, self.msg.get(key, lang), buttons)])
        if intent == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", lang))])
        if intent == "human":
            return self._human(state)
        return self._question(state, text, nlu)

    def _question(self, state: ConversationState, text: str, nlu: Understanding | None) -> Outcome:
        lang = state.lang
        answer = answer_question(text, self.retriever, region=state.region, lang=lang, nlu=nlu, strategy=self.strategy)
        if answer.fallback:
            state.fallback_streak += 1
            if state.fallback_streak >= 2:
                body = self.msg.get("fallback_again", lang) + "\n" + self._hotlines(self._known_regions(state), lang)
            else:
                body = self.msg.get("fallback", lang)
            return Outcome(state, [self._say(state, body, self._buttons(lang, "human", "help"))], answer)
        state.fallback_streak = 0
        replies = [self._say(state, answer.text)]
        if answer.ambiguous:
            state.pending_question = text
            replies.append(self._say(state, self.msg.get("ask_region", lang), self._region_buttons(lang)))
        return Outcome(state, replies, answer)
