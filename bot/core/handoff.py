"""Help-desk handoff: a conversation handed to staff, relayed both ways, handed back.

A handoff is a state of the user's conversation (``ConversationState.handoff``), so staff
messages are events of that conversation, applied in order with the user's own, and any
bot process can handle either side. Replies marked ``to="staff"`` go to the conversation's
topic in the staff group; the transport finds or opens that topic. Timers (nudge the
staff, give up and offer the hotline) are reminders like the walkthrough's, so they
survive restarts. Staff see personal data masked unless they ``/reveal`` a field, which
the caller logs (``Outcome.notes["revealed"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.core.answering import answer_question
from bot.core.desk import Desk, ServiceHours
from bot.core.events import ButtonPress, Command, Event, FileMessage, StaffMessage, TextMessage
from bot.core.messages import Messages
from bot.core.replies import FileRef, Reply
from bot.core.state import ConversationState, Handoff, ReminderSpec
from forms.catalog import Catalog
from forms.masking import mask_text, mask_value
from knowledge.index import Retriever
from knowledge.loader import KnowledgeBase

__all__ = ["TIMER_PREFIX", "Desk", "Handoffs", "ServiceHours"]

TIMER_PREFIX = "handoff:"
_HISTORY_ON_CARD = 8


@dataclass
class StaffOutcome:
    replies: list[Reply]
    notes: dict[str, object] = field(default_factory=dict)


class Handoffs:
    """The handoff part of the dialogue core (see the module docstring)."""

    def __init__(
        self,
        desk: Desk,
        kb: KnowledgeBase,
        messages: Messages,
        catalog: Catalog,
        retriever: Retriever,
        hotlines: Callable[[ConversationState], str],
        step_label: Callable[[ConversationState], str | None],
        resume: Callable[[ConversationState], Reply | None],
    ) -> None:
        self.desk = desk
        self.kb = kb
        self.msg = messages
        self.catalog = catalog
        self.retriever = retriever
        self._hotlines = hotlines
        self._step_label = step_label
        self._resume = resume

    # ------------------------------------------------------------------ helpers
    def _m(self, state: ConversationState, key: str, **values: str) -> str:
        return self.msg.get(f"ho.{key}", state.lang, **values)

    def _s(self, key: str, **values: str) -> str:
        """A text for staff (Chinese: the help desk works in Chinese)."""
        return self.msg.get(f"ho.staff.{key}", "zh", **values)

    def _staff(self, text: str, file: FileRef | None = None) -> Reply:
        return Reply(text, to="staff", file=file)

    @staticmethod
    def active(state: ConversationState) -> bool:
        return state.handoff is not None and state.handoff.status != "closed"

    # ------------------------------------------------------------------ opening
    def open(self, state: ConversationState, reason: str, at: datetime, lead: str = "") -> list[Reply]:
        """Hand the conversation to staff: the user is told what happens next, the staff
        topic gets the context card. ``lead``: a text to put before the notice."""
        if self.active(state):
            return [Reply(self._m(state, "already"))]
        number = (state.last_handoff.number if state.last_handoff else 0) + 1
        staffed = self.desk.open_at(at)
        state.handoff = Handoff(
            number=number,
            reason="fallback" if reason == "fallback" else "asked",
            status="waiting" if staffed else "message",
            opened_at=at,
            waiting_since=at,
            message_since=None if staffed else at,
        )
        if staffed:
            notice = self._m(state, "opened", minutes=str(self.desk.wait_minutes))
        else:
            hours = self.desk.hours.spec if self.desk.hours else ""
            notice = self._m(state, "after_hours", hours=hours) + "\n" + self._hotlines(state)
            state.handoff.acknowledged = True
        text = f"{lead}\n{notice}" if lead else notice
        return [Reply(text), self._staff(self.card(state))]

    def card(self, state: ConversationState) -> str:
        """The context card staff see first: who, where, why, what was said (masked)."""
        handoff = state.handoff
        assert handoff is not None
        company = state.active_company
        region = self.kb.regions.get(state.walkthrough or state.region or "")
        lines = [
            self._s(
                "card",
                number=str(handoff.number),
                reason=self._s(f"reason_{handoff.reason}"),
                company=company.name if company and not company.placeholder else self._s("none"),
                region=region.name if region else self._s("none"),
                step=self._step_label(state) or self._s("none"),
                hours=self._s("in_hours" if handoff.status == "waiting" else "after_hours"),
            )
        ]
        if company and company.profile:
            lines.append(self._s("profile"))
            for key, value in company.profile.items():
                fdef = self.catalog.fields.get(key)
                label = fdef.label.get("zh") if fdef else key
                shown = mask_value(fdef.type, value) if fdef is not None and fdef.personal else mask_text(value)
                lines.append(f"  {label}：{shown}")
        if state.history:
            lines.append(self._s("history"))
            for turn in state.history[-_HISTORY_ON_CARD:]:
                mark = "👤" if turn.role == "user" else "🤖"
                lines.append(f"  {mark} {turn.text[:200]}")
        lines.append(self._s("commands"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ the user's side
    def user_event(self, state: ConversationState, event: Event) -> list[Reply]:
        """While staff have the conversation: the user's messages go to them, the bot
        stays quiet (except to confirm a message kept out of hours); /cancel ends it."""
        handoff = state.handoff
        assert handoff is not None
        if isinstance(event, Command) and event.name == "cancel":
            return self.close(state, event.at, "用户取消", by_user=True)
        if (isinstance(event, Command) and event.name == "human") or (
            isinstance(event, ButtonPress) and event.payload == "human"
        ):
            return [Reply(self._m(state, "already"))]
        if isinstance(event, TextMessage):
            state.remember("user", event.text)
            relayed = [self._staff(self._s("user", text=mask_text(event.text[:3500])))]
        elif isinstance(event, FileMessage):
            label = event.name or self.msg.get(f"file_kind.{event.kind}", "zh")
            state.remember("user", f"[{event.kind}] {label} {event.caption}".strip())
            text = self._s("user_file", kind=event.kind, name=label)
            if event.caption:
                text += f"\n{mask_text(event.caption)}"
            relayed = [self._staff(text, FileRef(event.kind, event.ref, event.name))]
        elif isinstance(event, Command):
            text = f"/{event.name} {event.args}".strip()
            state.remember("user", text)
            relayed = [self._staff(self._s("user", text=mask_text(text)))]
        else:  # a button of an earlier message
            assert isinstance(event, ButtonPress)
            return [Reply(self._m(state, "already"))]
        if handoff.status == "message" and not handoff.acknowledged:
            handoff.acknowledged = True
            relayed.append(Reply(self._m(state, "message_kept")))
        return relayed

    # ------------------------------------------------------------------ the staff's side
    def staff(self, state: ConversationState, event: StaffMessage) -> StaffOutcome:
        handoff = state.handoff
        if handoff is None or handoff.status == "closed":
            return StaffOutcome([self._staff(self._s("not_active"))])
        name = event.staff_name or event.staff_id
        command = event.command
        if command == "take":
            return StaffOutcome(self._take(state, handoff, event, name))
        if command == "release":
            if handoff.status != "held":
                return StaffOutcome([self._staff(self._s("not_held"))])
            handoff.status, handoff.staff_id, handoff.staff_name = "waiting", None, None
            handoff.waiting_since, handoff.nudged = event.at, False
            return StaffOutcome([self._staff(self._s("released", name=name))])
        if command == "close":
            return StaffOutcome(self.close(state, event.at, event.args.strip() or "已处理"))
        if command == "note":
            if not event.args.strip():
                return StaffOutcome([self._staff(self._s("note_empty"))])
            handoff.notes.append(f"{name}: {mask_text(event.args.strip())}")
            return StaffOutcome([self._staff(self._s("note"))])
        if command == "kb":
            return StaffOutcome(self._kb(state, handoff, event, name))
        if command == "reveal":
            return self._reveal(state, event, name)
        if command:
            return StaffOutcome(
                [self._staff(self._s("unknown_command", command=command, commands=self._s("commands")))]
            )
        # A reply for the user: whoever answers first holds the conversation.
        replies: list[Reply] = []
        if handoff.status != "held":
            replies += self._take(state, handoff, event, name, quiet=True)
        return StaffOutcome([*replies, self._to_user(state, handoff, event, name)])

    def _take(
        self, state: ConversationState, handoff: Handoff, event: StaffMessage, name: str, quiet: bool = False
    ) -> list[Reply]:
        if handoff.status == "held" and handoff.staff_id not in (None, event.staff_id):
            return [self._staff(self._s("already_taken", name=handoff.staff_name or ""))]
        first = handoff.claimed_at is None
        handoff.status, handoff.staff_id, handoff.staff_name = "held", event.staff_id, name
        handoff.claimed_at = handoff.claimed_at or event.at
        replies = [self._staff(self._s("taken", name=name))]
        if first and not quiet:
            replies.append(Reply(self._m(state, "taken")))
        return replies

    def _to_user(self, state: ConversationState, handoff: Handoff, event: StaffMessage, name: str) -> Reply:
        handoff.answered_at = handoff.answered_at or event.at
        shown = f"（{name}）" if self.desk.show_names and name else ""
        text = self._m(state, "staff_says", name=shown, text=event.text) if event.text else ""
        state.remember("bot", f"[客服] {event.text}")
        if event.file is not None:
            ref = FileRef(event.file.kind, event.file.ref, event.file.name)
            return Reply(text or self._m(state, "staff_says", name=shown, text=event.file.name), file=ref)
        return Reply(text)

    def _kb(self, state: ConversationState, handoff: Handoff, event: StaffMessage, name: str) -> list[Reply]:
        query = event.args.strip()
        if not query:
            return [self._staff(self._s("kb_usage"))]
        answer = answer_question(query, self.retriever, region=state.walkthrough or state.region, lang=state.lang)
        if answer.fallback:
            return [self._staff(self._s("kb_none", query=query))]
        handoff.answered_at = handoff.answered_at or event.at
        state.remember("bot", f"[客服/kb] {answer.text}")
        return [Reply(self._m(state, "staff_kb", text=answer.text)), self._staff(self._s("kb_sent", text=answer.text))]

    def _reveal(self, state: ConversationState, event: StaffMessage, name: str) -> StaffOutcome:
        company = state.active_company
        personal = {
            key: self.catalog.fields[key]
            for key in (company.profile if company else {})
            if key in self.catalog.fields and self.catalog.fields[key].personal
        }
        if not personal or company is None:
            return StaffOutcome([self._staff(self._s("reveal_none"))])
        labels = "、".join(f.label.get("zh") for f in personal.values())
        wanted = event.args.strip()
        if not wanted:
            return StaffOutcome([self._staff(self._s("reveal_usage", fields=labels))])
        key = next((k for k, f in personal.items() if wanted in (k, f.label.get("zh"), f.label.get("en"))), None)
        if key is None:
            return StaffOutcome([self._staff(self._s("reveal_unknown", field=wanted, fields=labels))])
        label = personal[key].label.get("zh")
        text = self._s("reveal", label=label, value=company.profile[key])
        return StaffOutcome(
            [self._staff(text)], {"revealed": {"field": key, "staff": name, "staff_id": event.staff_id}}
        )

    # ------------------------------------------------------------------ closing
    @staticmethod
    def _end(state: ConversationState, at: datetime, resolution: str) -> None:
        """Mark the active handoff closed and keep it as the last one."""
        handoff = state.handoff
        assert handoff is not None
        handoff.status, handoff.closed_at, handoff.resolution = "closed", at, mask_text(resolution[:500])
        state.last_handoff, state.handoff = handoff, None

    def close(self, state: ConversationState, at: datetime, resolution: str, by_user: bool = False) -> list[Reply]:
        self._end(state, at, resolution)
        staff = self._staff(self._s("user_cancelled") if by_user else self._s("closed", resolution=resolution))
        replies = [staff, Reply(self._m(state, "cancelled" if by_user else "closed"))]
        resume = self._resume(state)
        if resume is not None:
            replies.append(resume)
        return replies

    def end_for_deletion(self, state: ConversationState, at: datetime) -> list[Reply]:
        """The user deleted their data during a handoff: it ends; staff are told why."""
        self._end(state, at, "用户删除数据")
        return [self._staff(self._s("user_deleted"))]

    # ------------------------------------------------------------------ timers
    def sync_timers(self, state: ConversationState) -> None:
        """Add the handoff's pending timers to ``state.reminders`` (after the walkthrough's)."""
        handoff = state.handoff
        if handoff is None:
            return
        n = handoff.number
        if handoff.status == "waiting":
            if not handoff.nudged:
                due = handoff.waiting_since + self.desk.nudge_after
                state.reminders.append(ReminderSpec(key=f"{TIMER_PREFIX}{n}:nudge", due=due, kind="handoff"))
            if not handoff.gave_up and handoff.answered_at is None:
                due = handoff.opened_at + self.desk.give_up_after
                state.reminders.append(ReminderSpec(key=f"{TIMER_PREFIX}{n}:give_up", due=due, kind="handoff"))
            return
        opening = self.desk.next_opening(handoff.message_since) if handoff.message_since else None
        if opening is not None and self._unanswered_message(handoff):
            state.reminders.append(ReminderSpec(key=f"{TIMER_PREFIX}{n}:hours", due=opening, kind="handoff"))

    @staticmethod
    def _unanswered_message(handoff: Handoff) -> bool:
        return handoff.status == "message" and handoff.answered_at is None and not handoff.hours_reminded

    def fire(self, state: ConversationState, key: str) -> list[Reply]:
        """A handoff timer came due: nothing if the handoff moved on meanwhile."""
        handoff = state.handoff
        number, _, what = key.removeprefix(TIMER_PREFIX).partition(":")
        if handoff is None or str(handoff.number) != number:
            return []
        if what == "hours" and self._unanswered_message(handoff) and handoff.message_since is not None:
            # Service hours began: the topic of a message left meanwhile comes up again.
            handoff.hours_reminded = True
            zone = self.desk.hours.zone if self.desk.hours else UTC
            since = handoff.message_since.astimezone(zone).strftime("%m-%d %H:%M")
            return [self._staff(self._s("hours_open", since=since))]
        if handoff.status != "waiting":
            return []
        if what == "nudge" and not handoff.nudged:
            handoff.nudged = True
            minutes = str(int(self.desk.nudge_after.total_seconds() // 60))
            return [self._staff(self._s("nudge", minutes=minutes))]
        if what == "give_up" and not handoff.gave_up and handoff.answered_at is None:
            handoff.gave_up, handoff.status, handoff.acknowledged = True, "message", True
            handoff.message_since = handoff.opened_at + self.desk.give_up_after
            minutes = str(int(self.desk.give_up_after.total_seconds() // 60))
            user = Reply(self._m(state, "gave_up") + "\n" + self._hotlines(state))
            return [user, self._staff(self._s("gave_up", minutes=minutes))]
        return []
