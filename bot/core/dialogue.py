"""The dialogue core: (state, event, understanding) -> (new state, replies).

It is pure in the sense that matters for testing and scaling: no I/O, no transport, no
clock of its own. The caller loads the state, asks an NLU engine for the understanding of a
text, calls ``handle`` and stores the new state together with the replies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.answering import Answer, answer_entry, answer_question, source_line
from bot.core.cards import Cards
from bot.core.events import (
    AgentReport,
    ButtonPress,
    Command,
    Event,
    FileMessage,
    PairingCode,
    StaffMessage,
    TextMessage,
    Timer,
)
from bot.core.forms import PREFIX as FM_PREFIX
from bot.core.forms import FormFilling, wants_document
from bot.core.handoff import TIMER_PREFIX as HO_TIMER
from bot.core.handoff import Desk, Handoffs
from bot.core.interpret import interpret
from bot.core.messages import Messages
from bot.core.replies import Button, Reply
from bot.core.state import ConversationState
from bot.core.walkthrough import PREFIX as WT_PREFIX
from bot.core.walkthrough import Walkthroughs, is_question
from forms.catalog import Catalog, default_catalog
from knowledge.index import Retriever
from knowledge.render import answer_lines, title
from knowledge.text import is_english
from nlu.hybrid import Strategy
from nlu.interpreter import Understanding
from nlu.lexical import load_intent_requirements
from nlu.places import default_other_places

__all__ = ["Dialogue", "Outcome"]

_REGION_PREFIX = "region:"
# A "did you mean" suggestion: the entry to answer.
_SUGGESTION_PREFIX = "kb:"
_PRIVACY_DELETE = "privacy:delete"
_PRIVACY_KEEP = "privacy:keep"
_ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}")
# Walkthrough moves the NLU already read; a done statement is one when the NLU read none of these.


@dataclass(frozen=True)
class Outcome:
    state: ConversationState
    replies: list[Reply]
    answer: Answer | None = None
    notes: dict[str, object] = field(default_factory=dict)


def _about_privacy(event: Event) -> bool:
    """/deletedata and its confirmation buttons."""
    if isinstance(event, Command):
        return event.name == "deletedata"
    return isinstance(event, ButtonPress) and event.payload in (_PRIVACY_DELETE, _PRIVACY_KEEP)


class Dialogue:
    """Decides what to say. One instance serves every conversation."""

    def __init__(
        self,
        retriever: Retriever,
        messages: Messages,
        strategy: Strategy = "hybrid",
        catalog: Catalog | None = None,
        desk: Desk | None = None,
    ) -> None:
        self.retriever = retriever
        self.kb = retriever.kb
        self.msg = messages
        self.strategy: Strategy = strategy
        self.forms = FormFilling(catalog or default_catalog(), self.kb, messages)
        self.wt = Walkthroughs(
            self.kb, messages, step_forms=self._step_has_forms, step_note=lambda state: self.cards.step_note(state)
        )
        self.cards = Cards(messages, self.wt)
        self.desk = desk or Desk()
        self.handoff = Handoffs(
            self.desk,
            self.kb,
            messages,
            self.forms.catalog,
            retriever,
            hotlines=lambda state: self._hotlines(self._known_regions(state), state.lang),
            step_label=self._step_label,
            resume=lambda state: self.forms.resume_offer(state) or self.wt.resume_offer(state),
        )
        self._requires = load_intent_requirements()
        default_other_places()  # built at start-up, not on the first user's question

    # ------------------------------------------------------------------ entry point
    def handle(self, state: ConversationState, event: Event, understanding: Understanding | None = None) -> Outcome:
        """The new state and replies; the time of the event is the only clock the core reads."""
        state = state.model_copy(deep=True)
        if isinstance(event, StaffMessage):
            staff = self.handoff.staff(state, event)
            outcome = Outcome(state, staff.replies, notes=staff.notes)
        elif isinstance(event, Timer) and event.key.startswith(HO_TIMER):
            outcome = Outcome(state, self.handoff.fire(state, event.key))
        elif isinstance(event, Timer):
            outcome = Outcome(state, self.wt.fire(state, event.key))
        elif isinstance(event, AgentReport):
            # The card agent's news reach the user even while staff hold the conversation.
            outcome = Outcome(state, self.cards.report(state, event))
        elif isinstance(event, PairingCode):
            outcome = Outcome(state, self.cards.pairing_code(state, event))
        elif self.handoff.active(state) and not _about_privacy(event):
            # Staff have the conversation: the user's messages are theirs, not the bot's
            # (except asking to delete their data, which the bot does at any time).
            outcome = Outcome(state, self.handoff.user_event(state, event))
        elif isinstance(event, Command):
            outcome = self._command(state, event)
        elif isinstance(event, ButtonPress):
            outcome = self._button(state, event)
        elif isinstance(event, FileMessage):
            outcome = self._file(state, event)
        else:
            outcome = self._text(state, event, understanding)
            prog = state.progress()
            if prog is not None and not prog.finished:
                prog.updated_at = event.at
        if any(r.form is not None for r in outcome.replies) and self.wt.active(state):
            offer = self.wt.resume_offer(state)
            if offer is not None:
                outcome.replies.append(offer)
        for reply in outcome.replies:
            # A pairing code is not history: it is shown once, stored only as a digest.
            if reply.to == "user" and not isinstance(event, StaffMessage | PairingCode):
                state.remember("bot", reply.text)
        self.wt.sync_reminders(state)
        self.handoff.sync_timers(state)
        return outcome

    # ------------------------------------------------------------------ helpers
    def _step_has_forms(self, state: ConversationState, region: str, step: str, answers: dict[str, str]) -> bool:
        return bool(self.forms.for_step(state, region, step, answers))

    def _buttons(self, lang: str, *keys: str) -> tuple[Button, ...]:
        return tuple(Button(self.msg.get(f"buttons.{k}", lang), k) for k in keys)

    def _region_buttons(self, lang: str) -> tuple[Button, ...]:
        return tuple(
            Button(r.name_en if lang == "en" else r.name, f"{_REGION_PREFIX}{key}")
            for key, r in self.kb.regions.items()
        )

    def _say(self, state: ConversationState, text: str, buttons: tuple[Button, ...] = ()) -> Reply:
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

    def _step_label(self, state: ConversationState) -> str | None:
        """The current walkthrough step for the staff's context card: procedure, n/total, title."""
        proc, prog = self.wt.procedure(state), state.progress()
        if proc is None or prog is None or prog.current is None:
            return None
        step = proc.step(prog.current)
        return f"{proc.title.get('zh')} 第{proc.index(step.id) + 1}/{len(proc.steps)}步 {step.title.get('zh')}"

    def _known_regions(self, state: ConversationState) -> list[str]:
        return [state.region] if state.region else list(self.kb.regions)

    # ------------------------------------------------------------------ commands and buttons
    def _command(self, state: ConversationState, cmd: Command) -> Outcome:
        lang = state.lang
        if cmd.name == "start":
            buttons = (*self._region_buttons(lang), Button(self.msg.get("buttons.start", lang), f"{WT_PREFIX}start"))
            return Outcome(state, [self._say(state, self.msg.get("welcome", lang), buttons)])
        if cmd.name == "walkthrough":
            return Outcome(state, self.wt.start(state, cmd.at, self._region_arg(cmd.args)))
        if cmd.name == "progress":
            return Outcome(state, [self.wt.checklist(state)])
        if cmd.name == "company":
            return Outcome(state, self.wt.companies(state))
        if cmd.name == "forms":
            return Outcome(state, self.forms.menu(state, self._region_arg(cmd.args)))
        if cmd.name == "profile":
            return Outcome(state, self.forms.profile(state))
        if cmd.name == "reminders" and cmd.args.lower() in {"on", "off"}:
            return Outcome(state, self.wt.set_reminders(state, cmd.args.lower() == "on"))
        if cmd.name == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", lang))])
        if cmd.name == "human":
            return self._human(state, cmd.at)
        if cmd.name == "pair":
            # With a card-agent endpoint the assistant turns /pair into a PairingCode event.
            return Outcome(state, self.cards.unavailable(state))
        if cmd.name == "unpair":
            # Likewise into AgentReport("unpaired"); here no agent can have been paired.
            return Outcome(state, self.cards.report(state, AgentReport(kind="unpaired", agent="", at=cmd.at)))
        if cmd.name == "deletedata":
            buttons = (
                Button(self.msg.get("privacy.buttons.delete", lang), _PRIVACY_DELETE),
                Button(self.msg.get("privacy.buttons.keep", lang), _PRIVACY_KEEP),
            )
            return Outcome(state, [self._say(state, self.msg.get("privacy.confirm", lang), buttons)])
        if cmd.name == "cancel":
            if state.form is not None:
                return Outcome(state, self.forms.cancel(state))
            state.pending_question = None
            state.awaiting = None
            return Outcome(state, [self._say(state, self.msg.get("cancelled", lang))])
        text = self.msg.get("unknown_command", lang, command="/" + cmd.name[:32])
        return Outcome(state, [self._say(state, text)])

    def _region_arg(self, args: str) -> str | None:
        """``/walkthrough zhuhai`` or ``/walkthrough 珠海``: a region key, else None."""
        arg = args.strip().lower()
        return (
            next((k for k, r in self.kb.regions.items() if arg in (k, r.name, r.name_en.lower())), None)
            if arg
            else None
        )

    def _button(self, state: ConversationState, press: ButtonPress) -> Outcome:
        payload = press.payload
        if payload.startswith(WT_PREFIX):
            replies = self.wt.button(state, payload, press.at)
            if replies is not None:
                return Outcome(state, replies)
            return Outcome(state, [self._say(state, self.msg.get("stale_button", state.lang))])
        if payload.startswith(FM_PREFIX):
            replies = self.forms.button(state, payload, press.at)
            if replies is not None:
                return Outcome(state, replies)
            return Outcome(state, [self._say(state, self.msg.get("stale_button", state.lang))])
        if payload.startswith(_REGION_PREFIX) and payload[len(_REGION_PREFIX) :] in self.kb.regions:
            region = payload[len(_REGION_PREFIX) :]
            if self.wt.active(state) and region != state.walkthrough:
                return Outcome(state, self.wt.start(state, press.at, region))
            return self._set_region(state, region)
        if payload.startswith(_SUGGESTION_PREFIX):
            return self._suggestion_taken(state, payload[len(_SUGGESTION_PREFIX) :])
        if payload == _PRIVACY_DELETE:
            # The assistant deletes everything kept about the chat, then sends this.
            replies = [self._say(state, self.msg.get("privacy.deleted", state.lang))]
            if self.handoff.active(state):
                replies += self.handoff.end_for_deletion(state, press.at)
            return Outcome(state, replies, notes={"delete_data": True})
        if payload == _PRIVACY_KEEP:
            return Outcome(state, [self._say(state, self.msg.get("privacy.kept", state.lang))])
        if payload == "human":
            return self._human(state, press.at)
        if payload == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", state.lang))])
        return Outcome(state, [self._say(state, self.msg.get("stale_button", state.lang))])

    def _suggestion_taken(self, state: ConversationState, entry_id: str) -> Outcome:
        question = next((m.text for m in reversed(state.history) if m.role == "user"), "")
        answer = answer_entry(question, entry_id, self.retriever, lang=state.lang)
        if answer is None:
            return Outcome(state, [self._say(state, self.msg.get("stale_button", state.lang))])
        state.fallback_streak = 0
        offer = self.wt.offer_button(state, *answer.offer) if answer.offer and not self.wt.active(state) else None
        replies = [self._say(state, answer.text, (offer,) if offer else ())]
        resume = self.forms.resume_offer(state) or self.wt.resume_offer(state)
        if resume is not None:
            replies.append(resume)
        return Outcome(state, replies, answer, notes={"suggestion_taken": entry_id})

    def _suggest(self, state: ConversationState, answer: Answer) -> Reply:
        lang = state.lang
        buttons = tuple(
            Button(title(self.kb.get(entry_id), lang), f"{_SUGGESTION_PREFIX}{entry_id}")
            for entry_id in answer.suggestions
        )
        lead = self.msg.get("not_explained", lang, term=answer.undefined) if answer.undefined else None
        return self._say(state, lead or self.msg.get("did_you_mean", lang), (*buttons, *self._buttons(lang, "human")))

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

    def _file(self, state: ConversationState, file: FileMessage) -> Outcome:
        """Files are not read by the bot: say so, and offer a person who can look at them."""
        label = file.name or self.msg.get(f"file_kind.{file.kind}", state.lang)
        state.remember("user", f"[{file.kind}] {label} {file.caption}".strip())
        text = self.msg.get("file_received", state.lang, name=label)
        return Outcome(state, [self._say(state, text, self._buttons(state.lang, "human", "help"))])

    def _human(self, state: ConversationState, at: datetime) -> Outcome:
        if self.desk.enabled:
            return Outcome(state, self.handoff.open(state, "asked", at), notes={"handoff_requested": True})
        lang = state.lang
        text = self.msg.get("human_no_staff", lang) + "\n" + self._hotlines(self._known_regions(state), lang)
        return Outcome(state, [self._say(state, text)], notes={"handoff_requested": True})

    # ------------------------------------------------------------------ text
    def _text(self, state: ConversationState, message: TextMessage, nlu: Understanding | None) -> Outcome:
        text = message.text.strip()
        if not text:
            return Outcome(state, [self._say(state, self.msg.get("empty", state.lang))])
        # A form answer (a code, an e-mail, a name) says nothing about the user's language.
        if state.form is None or _ENGLISH_WORDS.search(text):
            state.lang = "en" if (nlu.lang == "en" if nlu else is_english(text)) else "zh"
        state.remember("user", text)
        lang = state.lang
        region_named = nlu.entities.get("region") if nlu else None
        intent = nlu.intent if nlu else "faq"
        # Commands and answers are read in the text as spelt right (simplified, typos fixed);
        # names and form answers in the text as typed.
        plain = nlu.plain.strip() if nlu is not None and nlu.plain.strip() else text
        needed = self._requires.get(intent)
        if needed and not any(word in plain.lower() for word in needed):
            intent = "faq"  # a command intent without its words: read it as a question
        walking = self.wt.active(state)

        # Form filling: a field's answer, pasted fields, a correction ("改一下法人姓名").
        if state.form is not None or (state.active_company is not None and state.active_company.profile):
            replies = self.forms.text(state, text, message.at)
            if replies is not None:
                return Outcome(state, replies)
        if state.form is None and (intent == "fill_form" or wants_document(text)) and not is_question(text):
            replies = self.forms.from_text(state, text, message.at)
            if replies is None and intent == "fill_form":
                replies = self.forms.menu(state)
            if replies is not None:
                return Outcome(state, replies)

        # A company named with a question at the company prompt ("西安星河贸易有限公司，请问要准备
        # 什么材料"): the name is taken and the question answered.
        awaiting = state.awaiting
        if awaiting is not None and awaiting.kind == "company_name" and is_question(plain):
            embedded = self.wt.embedded_company(text)
            if embedded is not None:
                named = self.wt.set_company(state, embedded, message.at)
                asked = self._question(state, text, nlu, region_named, message.at)
                return Outcome(state, [*named, *asked.replies], asked.answer)
        # The walkthrough's reading, in its one order (bot.core.interpret).
        replies = interpret(self.wt, state, text, nlu, intent, region_named, message.at)
        if replies is not None:
            return Outcome(state, replies)
        if region_named and not walking:
            state.region = region_named

        if intent in {"greet", "thanks", "bye", "affirm", "deny"}:
            key = {"affirm": "ack", "deny": "ack"}.get(intent, intent)
            buttons = self._region_buttons(lang) if intent == "greet" and not state.region else ()
            return Outcome(state, [self._say(state, self.msg.get(key, lang), buttons)])
        if intent == "help":
            return Outcome(state, [self._say(state, self.msg.get("help", lang))])
        if intent == "human":
            return self._human(state, message.at)
        if intent == "card_status":
            return Outcome(state, self.cards.question(state))
        if intent == "pair_agent":
            return Outcome(state, self.cards.how_to_pair(state))
        return self._question(state, text, nlu, region_named, message.at)

    def _question(
        self,
        state: ConversationState,
        text: str,
        nlu: Understanding | None,
        region_named: str | None,
        at: datetime,
    ) -> Outcome:
        lang = state.lang
        # In a walkthrough a region named in a question answers for that region only.
        region = region_named or state.region
        answer = answer_question(
            text,
            self.retriever,
            region=region,
            lang=lang,
            nlu=nlu,
            strategy=self.strategy,
            context=self.wt.step_entries(state),
        )
        resume = self.forms.resume_offer(state) or self.wt.resume_offer(state)
        if answer.fallback and answer.elsewhere:
            body = self.msg.get("elsewhere", lang, place=(", " if lang == "en" else "、").join(answer.elsewhere))
            replies = [self._say(state, body, self._buttons(lang, "human", "help"))]
            return Outcome(state, replies + ([resume] if resume else []), answer)
        if answer.fallback and answer.suggestions:
            return Outcome(state, [self._suggest(state, answer)] + ([resume] if resume else []), answer)
        if answer.fallback:
            state.fallback_streak += 1
            if state.fallback_streak >= 2 and self.desk.enabled:
                # Twice without an answer: a person takes over rather than a third try.
                state.fallback_streak = 0
                lead = self.msg.get("fallback_handoff", lang)
                return Outcome(state, self.handoff.open(state, "fallback", at, lead), answer)
            if state.fallback_streak >= 2:
                body = self.msg.get("fallback_again", lang) + "\n" + self._hotlines(self._known_regions(state), lang)
            else:
                body = self.msg.get("fallback", lang)
            replies = [self._say(state, body, self._buttons(lang, "human", "help"))]
            return Outcome(state, replies + ([resume] if resume else []), answer)
        state.fallback_streak = 0
        # An overview or "what next" outside a walkthrough offers one, at the step it names.
        offer = self.wt.offer_button(state, *answer.offer) if answer.offer and not self.wt.active(state) else None
        replies = [self._say(state, answer.text, (offer,) if offer else ())]
        if answer.ambiguous:
            state.pending_question = text
            replies.append(self._say(state, self.msg.get("ask_region", lang), self._region_buttons(lang)))
        elif resume is not None:
            replies.append(resume)
        return Outcome(state, replies, answer)
