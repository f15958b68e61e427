"""Sending committed replies: at least once, in order per chat, across restarts and processes.

The assistant commits a transport's replies as outbox rows in the same transaction as the
state of the event that produced them. ``Outbox.flush`` sends a chat's rows in order right
after the event; a row the transport refuses for a while (429, 5xx, network down) stays
and is retried with backoff by ``Outbox.run``, which also picks up rows a crashed process
left behind. Later rows of that chat wait behind it, so replies never overtake each other.
A lease on each row keeps two processes from sending the same one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bot.core.replies import Button, Document, FileRef, Reply
from bot.locks import KeyedLocks
from bot.store import Pending, Store

__all__ = ["DeliveryError", "Outbox", "Send", "Ticket", "decode_reply", "encode_reply"]

log = logging.getLogger(__name__)

# Sends one reply to a chat; raises DeliveryError when it did not get through.
Send = Callable[[str, Reply], Awaitable[None]]

_LEASE = timedelta(seconds=60)
_BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 300.0)


class DeliveryError(Exception):
    """A reply was not delivered. ``permanent``: it never will be (blocked bot, unknown
    chat, a malformed request); otherwise retry, after ``retry_after`` seconds if known."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


def encode_reply(reply: Reply, ticket: Ticket | None = None) -> str:
    """A reply as the JSON an outbox row holds (the document by path, not content).
    ``ticket``: for a reply to staff, the handoff it belongs to (the transport's topic)."""
    data: dict[str, Any] = {"text": reply.text}
    if reply.buttons:
        data["buttons"] = [[b.label, b.payload] for b in reply.buttons]
    if reply.document is not None:
        doc = reply.document
        data["document"] = {"path": str(doc.path), "filename": doc.filename, "caption": doc.caption}
    if reply.file is not None:
        data["file"] = {"kind": reply.file.kind, "ref": reply.file.ref, "name": reply.file.name}
    if reply.to != "user":
        data["to"] = reply.to
    if ticket is not None:
        data["ticket"] = asdict(ticket)
    return json.dumps(data, ensure_ascii=False)


def decode_reply(payload: str) -> Reply:
    data = json.loads(payload)
    buttons = tuple(Button(label, value) for label, value in data.get("buttons", []))
    document = None
    if doc := data.get("document"):
        document = Document(Path(doc["path"]), doc["filename"], doc.get("caption", ""))
    file = FileRef(**data["file"]) if data.get("file") else None
    meta: dict[str, object] = {"ticket": Ticket(**data["ticket"])} if data.get("ticket") else {}
    return Reply(str(data["text"]), buttons, document, to=data.get("to", "user"), file=file, meta=meta)


@dataclass(frozen=True)
class Ticket:
    """Which handoff a staff message belongs to: the user's conversation and its number."""

    channel: str
    chat_id: str
    number: int
    title: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """Delivers one channel's outbox rows through ``send``."""

    def __init__(
        self,
        store: Store,
        channel: str,
        send: Send,
        *,
        clock: Callable[[], datetime] = _utc_now,
        poll: float = 2.0,
        settle: timedelta = timedelta(seconds=5),
        max_attempts: int = len(_BACKOFF) + 1,
    ) -> None:
        self.store = store
        self.channel = channel
        self.send = send
        self.clock = clock
        self.poll = poll
        self.settle = settle
        self.max_attempts = max_attempts
        self._locks: KeyedLocks[str] = KeyedLocks()
        # Sends to other chats started by ``flush_event``; if the process stops first, their
        # leases run out and ``run`` sends them.
        self._background: set[asyncio.Task[int]] = set()

    async def flush(self, chat_id: str, leased: Sequence[Pending] = ()) -> int:
        """Send the chat's pending replies in order; returns how many were sent.

        ``leased``: rows the caller already holds (``Store.save`` leased them with the
        event), sent without looking them up. Stops at the first reply that must wait (it
        keeps its place) or that another process is sending.
        """
        async with self._locks.hold(chat_id):
            if leased:
                return await self._send_rows(chat_id, list(leased), held=True)
            rows = await self.store.call(self.store.pending, self.channel, chat_id)
            return await self._send_rows(chat_id, rows, held=False)

    async def flush_event(self, chat_id: str, leased: Sequence[Pending] = ()) -> int:
        """Send what one event of ``chat_id`` committed: that chat's replies now (returns how
        many were sent), replies to other chats of this channel (a handoff's staff group)
        in the background. A staff group is paced by Telegram's per-group limit (20 a
        minute): a user's conversation must not wait for it."""
        others: dict[str, list[Pending]] = {}
        for row in leased:
            if row.channel == self.channel and row.chat_id != chat_id:
                others.setdefault(row.chat_id, []).append(row)
        for other, rows in others.items():
            task = asyncio.create_task(self.flush(other, rows), name=f"outbox:{other}")
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return await self.flush(chat_id, [row for row in leased if row.chat_id == chat_id])

    async def _send_rows(self, chat_id: str, rows: list[Pending], *, held: bool) -> int:
        sent: list[int] = []
        try:
            for i, row in enumerate(rows):
                if not held:
                    if row.next_try_at > self.clock():
                        break  # waiting out a back-off; later replies keep their place behind it
                    if not await self.store.call(self.store.claim, row.id, self.clock(), _LEASE):
                        break  # another process is sending this chat's replies
                result = await self._send_one(chat_id, row)
                if result == "wait":
                    if held:
                        await self.store.call(self.store.release, [r.id for r in rows[i + 1 :]])
                    break
                if result == "sent":
                    sent.append(row.id)
        finally:
            await self.store.call(self.store.mark_sent, sent, self.clock())
        return len(sent)

    async def _send_one(self, chat_id: str, row: Pending) -> Literal["sent", "dropped", "wait"]:
        """Send one row: sent, dropped for good, or postponed (later rows wait behind it)."""
        where = {"channel": self.channel, "chat_id": chat_id, "outbox_id": row.id, "attempt": row.attempts + 1}
        backoff = _BACKOFF[min(row.attempts, len(_BACKOFF) - 1)]
        try:
            await self.send(chat_id, decode_reply(row.payload))
            return "sent"
        except DeliveryError as exc:
            if exc.permanent or row.attempts + 1 >= self.max_attempts:
                log.error("reply dropped: %s", exc, extra=where)
                await self.store.call(self.store.mark_failed, row.id, str(exc))
                return "dropped"  # the next reply may go
            delay = exc.retry_after or backoff
            log.warning("reply not delivered, retrying in %.0f s: %s", delay, exc, extra=where)
        except Exception:
            # A bug or an unknown failure: keep the reply for the retry loop, log the context.
            log.exception("reply sending failed", extra=where)
            delay = backoff
        until = self.clock() + timedelta(seconds=delay)
        await self.store.call(self.store.postpone, row.id, row.attempts + 1, until)
        return "wait"

    async def run_once(self) -> int:
        """Retry every chat with due replies (not the ones committed in the last ``settle``:
        their event's handler is sending them)."""
        chats = await self.store.call(self.store.chats_with_pending, self.channel, self.clock(), self.settle)
        sent = 0
        for chat_id in chats:
            sent += await self.flush(chat_id)
        return sent

    async def run(self) -> None:
        """Retry pending replies until cancelled."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox pass failed; retrying", extra={"channel": self.channel})
            await asyncio.sleep(self.poll)
