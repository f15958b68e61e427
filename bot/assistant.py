"""The service every channel talks to: load state, understand, decide, store, reply.

Channel adapters stay thin: they turn their updates into core events, call
``Assistant.handle`` and render the replies. The state and the transcript of an event are
committed together before the replies are returned, so an acknowledged reply is never
lost and a crash never leaves half an event stored. For channels with an outbox (Telegram)
the replies are committed in the same transaction, to be sent by ``bot.outbox.Outbox``;
an event given idempotency keys (the Telegram update id) is applied at most once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.agents import Agents
from bot.core.dialogue import Dialogue, Outcome
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
    without_nul,
)
from bot.core.handoff import Desk
from bot.core.messages import default_messages
from bot.core.replies import Document, Reply
from bot.core.state import ConversationState
from bot.locks import KeyedLocks
from bot.outbox import Ticket, encode_reply
from bot.privacy import Privacy
from bot.store import DuplicateEventError, Saved, StaleStateError, Store
from cardagent.protocol import format_code, new_code
from forms.masking import mask_text
from forms.pdf import ConversionError
from forms.render import Renderer, RenderError
from knowledge.index import Retriever, default_retriever
from nlu.interpreter import Interpreter, Understanding
from nlu.lexical import default_lexical

__all__ = ["Assistant"]

log = logging.getLogger(__name__)
_MAX_RETRIES = 5
_LEASE = timedelta(seconds=60)


def _describe(event: Event) -> str:
    if isinstance(event, TextMessage):
        return event.text
    if isinstance(event, ButtonPress):
        return f"[button] {event.payload}"
    if isinstance(event, Timer):
        return f"[timer] {event.key}"
    if isinstance(event, FileMessage):
        return f"[{event.kind}] {event.name} {event.caption}".strip()
    if isinstance(event, StaffMessage):
        said = f"/{event.command} {event.args}" if event.command else event.text
        return f"[客服 {event.staff_name or event.staff_id}] {said}".strip()
    if isinstance(event, PairingCode):
        return "/pair"
    if isinstance(event, AgentReport):
        parts = [f"{c.kind} {c.reader}".strip() for c in event.changes]
        if event.late:
            parts.append(f"{event.late} late")
        if event.kind == "report" and not event.service:
            parts.append("service unavailable")
        return f"[card agent {event.agent}] {event.kind}{': ' if parts else ''}{'; '.join(parts)}"
    assert isinstance(event, Command)
    return f"/{event.name} {event.args}".strip()


def _hide_code(text: str, event: Event) -> str:
    if isinstance(event, PairingCode):
        return text.replace(format_code(event.code), "****-****")
    return text


class Assistant:
    """Runs one event of one conversation at a time; different conversations concurrently."""

    def __init__(
        self,
        store: Store,
        interpreter: Interpreter | None = None,
        retriever: Retriever | None = None,
        *,
        documents_dir: Path | None = None,
        pdf: bool = False,
        outbox_channels: Collection[str] = (),
        desk: Desk | None = None,
        staff_route: tuple[str, str] | None = None,
        agent_url: str | None = None,
        user_rate: int = 0,
    ) -> None:
        """``staff_route``: (channel, chat id) of the staff group that replies ``to="staff"``
        go to (through that channel's outbox); ``desk`` says how the help desk works;
        ``agent_url``: where card agents reach this bot (None: /pair is not offered; set
        it once the card-agent endpoint listens); ``user_rate``: messages a minute one user may
        send before the bot stops answering for a while (0: no limit)."""
        self.store = store
        self.agents = Agents(store)
        self.agent_url = agent_url
        self.retriever = retriever or default_retriever()
        self.interpreter: Interpreter = interpreter or default_lexical()
        self.dialogue = Dialogue(self.retriever, default_messages(), desk=desk)
        self.staff_route = staff_route
        self.documents_dir = documents_dir or Path(tempfile.gettempdir()) / "portpal-documents"
        self.privacy = Privacy(store, self.documents_dir)
        self.pdf = pdf
        self.outbox_channels = frozenset(outbox_channels)
        self._renderer: Renderer | None = None
        self._locks: KeyedLocks[tuple[str, str]] = KeyedLocks()
        self.user_rate = user_rate
        self._sent: dict[tuple[str, str], deque[float]] = {}

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = Renderer(self.dialogue.forms.catalog, self.retriever.kb)
        return self._renderer

    def _render(self, channel: str, chat_id: str, replies: list[Reply]) -> list[Reply]:
        """Turn the core's document requests into files; a failure becomes a message."""
        if not any(r.form for r in replies):
            return replies
        chat = hashlib.sha256(f"{channel}:{chat_id}".encode()).hexdigest()[:16]
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        out_dir = self.documents_dir / channel / chat / f"{stamp}-{uuid.uuid4().hex[:8]}"
        rendered: list[Reply] = []
        for reply in replies:
            request = reply.form
            if request is None:
                rendered.append(reply)
                continue
            form = self.dialogue.forms.catalog.forms[request.form_id]
            try:
                files = self.renderer.render(form, dict(request.values), out_dir, pdf=self.pdf, lang=request.lang)
            except (RenderError, ConversionError, OSError, ValueError) as exc:
                log.error("render failed: %s:%s form %s: %s", channel, chat, request.form_id, mask_text(str(exc)))
                title = form.title.get(request.lang)
                text = default_messages().get("fm.render_failed", request.lang, title=title, reason=type(exc).__name__)
                rendered.append(Reply(text))
                continue
            for file in files:
                document = Document(file.path, file.filename, reply.text)
                rendered.append(replace(reply, text=f"{reply.text}：{file.filename}", document=document))
        return rendered

    def _outbox(
        self, channel: str, chat_id: str, state: ConversationState, replies: list[Reply]
    ) -> list[tuple[str, str, str]]:
        """Outbox rows: the user's replies to the chat, the staff's to the staff group."""
        rows: list[tuple[str, str, str]] = []
        handoff = state.handoff or state.last_handoff
        for reply in replies:
            if reply.to == "user":
                if channel in self.outbox_channels:
                    rows.append((channel, chat_id, encode_reply(reply)))
            elif self.staff_route is not None and handoff is not None and self.staff_route[0] in self.outbox_channels:
                company = state.active_company
                title = company.name if company and not company.placeholder else chat_id
                ticket = Ticket(channel, chat_id, handoff.number, title)
                rows.append((*self.staff_route, encode_reply(reply, ticket)))
            else:
                log.warning("a reply for staff but no staff group to send it to: %s:%s", channel, chat_id)
        return rows

    async def _forget(self, channel: str, chat_id: str, outcome: Outcome, keys: Collection[str]) -> Saved:
        """/deletedata confirmed: delete everything about the chat, then keep only the
        reply that says so (a new, empty conversation, so the reply is still delivered)."""
        await self.store.call(self.privacy.delete, channel, chat_id)
        fresh = await self.store.call(self.store.load, channel, chat_id)
        state = ConversationState(lang=outcome.state.lang)
        messages = [("out", r.text) for r in outcome.replies if r.to == "user"]
        # A handoff it ended is told to staff: routed with the state that still knows it.
        outbox = self._outbox(channel, chat_id, outcome.state, outcome.replies)
        return await self.store.call(self.store.save, fresh, state, messages, keys=keys, outbox=outbox, lease=_LEASE)

    def _over_rate(self, channel: str, chat_id: str, event: Event, state: ConversationState) -> list[Reply] | None:
        """None when the event may be handled; else what to say (once, then nothing) while
        the user sends more than ``user_rate`` messages a minute. Relayed messages to staff
        are not limited: the outbox paces those, and a person reads them."""
        if not self.user_rate or not isinstance(event, TextMessage | ButtonPress | Command | FileMessage):
            return None
        if state.handoff is not None and state.handoff.status in {"waiting", "held", "message"}:
            return None
        now = time.monotonic()
        sent = self._sent.setdefault((channel, chat_id), deque())
        while sent and sent[0] <= now - 60:
            sent.popleft()
        if len(self._sent) > 50_000:  # forget chats quiet for a minute
            for key in [k for k, v in self._sent.items() if not v or v[-1] <= now - 60]:
                del self._sent[key]
            sent = self._sent.setdefault((channel, chat_id), sent)
        sent.append(now)
        if len(sent) <= self.user_rate:
            return None
        log.warning("user over the message rate (%s a minute): %s:%s", self.user_rate, channel, chat_id)
        if len(sent) > self.user_rate + 1:
            return []
        wait = max(1, round(sent[0] + 60 - now))
        return [Reply(default_messages().get("rate_limited", state.lang, seconds=str(wait)))]

    async def _agent_command(self, channel: str, chat_id: str, event: Event) -> Event:
        """/pair and /unpair act on the agent registry first; the core then hears what
        came of it (the code to show, the agent unpaired)."""
        if not isinstance(event, Command) or event.name not in {"pair", "unpair"} or self.agent_url is None:
            return event
        if event.name == "pair":
            code = new_code()
            expires = await self.store.call(self.agents.issue, channel, chat_id, code)
            log.info("pairing code issued: %s:%s", channel, chat_id)
            return PairingCode(code, expires, self.agent_url, update_id=event.update_id, at=event.at)
        names = await self.store.call(self.agents.revoke_chat, channel, chat_id)
        if names:
            log.info("card agent unpaired from the chat: %s:%s %s", channel, chat_id, names[0])
        return AgentReport("unpaired", names[0] if names else "", update_id=event.update_id, at=event.at)

    async def understand(self, event: Event) -> Understanding | None:
        # Telegram's own limit: a longer text (a console paste) costs the engine time, not meaning.
        if isinstance(event, TextMessage) and event.text.strip():
            return await self.interpreter.parse(event.text[:4096])
        return None

    async def handle(self, channel: str, chat_id: str, event: Event, *, keys: Collection[str] = ()) -> Outcome:
        """Process ``event`` for a chat and return the committed outcome.

        ``keys`` identify the event (``telegram:update:42``): an event whose key is stored
        was applied before and gives an outcome without replies, ``notes["duplicate"]``.
        """
        started = time.perf_counter()
        outcome = await self._handle(channel, chat_id, without_nul(event), keys)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "event handled",
                extra={
                    "channel": channel, "chat_id": chat_id, "conversation_id": outcome.notes.get("conversation_id"),
                    "update_id": getattr(event, "update_id", None), "event": type(event).__name__,
                    "engine": outcome.notes.get("nlu"), "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                    "answer": outcome.answer.intent if outcome.answer else None,
                    "suggested": list(outcome.answer.suggestions) if outcome.answer else [],
                    "suggestion_taken": outcome.notes.get("suggestion_taken"),
                },
            )  # fmt: skip
        return outcome

    async def _handle(self, channel: str, chat_id: str, event: Event, keys: Collection[str]) -> Outcome:
        duplicate = Outcome(ConversationState(), [], notes={"duplicate": True})
        # Events of one chat are understood and applied in the order they arrived.
        async with self._locks.hold((channel, chat_id)):
            loaded = await self.store.call(self.store.load, channel, chat_id, list(keys))
            if loaded.seen:
                return duplicate
            limited = self._over_rate(channel, chat_id, event, loaded.state)
            if limited is None:
                event = await self._agent_command(channel, chat_id, event)
            understanding = await self.understand(event) if limited is None else None
            for attempt in range(_MAX_RETRIES):
                if attempt:
                    loaded = await self.store.call(self.store.load, channel, chat_id)
                if limited is None:
                    outcome = self.dialogue.handle(loaded.state, event, understanding)
                else:
                    # Recorded (the transcript keeps it) but not answered; told once a minute.
                    outcome = Outcome(loaded.state, limited, notes={"rate_limited": True})
                replies = await asyncio.to_thread(self._render, channel, chat_id, outcome.replies)
                outcome = replace(outcome, replies=replies)
                if understanding is not None:
                    outcome.notes.setdefault("nlu", understanding.engine)
                # Transcripts are read by staff and exports: ID and phone numbers are masked,
                # and a pairing code is kept nowhere but in the reply that shows it.
                messages = [("in", mask_text(_describe(event)))] + [
                    ("out" if r.to == "user" else "stf", _hide_code(mask_text(r.text), event)) for r in replies
                ]
                outbox = self._outbox(channel, chat_id, outcome.state, replies)
                if revealed := outcome.notes.get("revealed"):
                    log.warning("staff revealed a personal field: %s:%s %s", channel, chat_id, revealed)
                if outcome.notes.get("delete_data"):
                    # Deleted first, then the reply saved with the event's keys: a crash between
                    # the two leaves the update unacknowledged, and its redelivery deletes again.
                    saved = await self._forget(channel, chat_id, outcome, keys)
                    outcome = replace(outcome, state=ConversationState(lang=outcome.state.lang))
                else:
                    try:
                        saved = await self.store.call(
                            self.store.save, loaded, outcome.state, messages, keys=keys, outbox=outbox, lease=_LEASE
                        )
                    except StaleStateError:
                        log.info("stale state, retrying", extra={"channel": channel, "attempt": attempt})
                        continue
                    except DuplicateEventError:
                        return duplicate
                if saved.claimed:
                    # Leased to this process: the channel sends them without looking them up.
                    outcome.notes["outbox"] = saved.claimed
                if saved.destinations:
                    outcome.notes["destinations"] = saved.destinations
                outcome.notes["conversation_id"] = loaded.conversation_id
                return outcome
        raise StaleStateError(f"{channel}:{chat_id}: gave up after {_MAX_RETRIES} concurrent updates")
