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
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bot.core.replies import Button, Document, FileRef, Reply
from bot.locks import KeyedLocks
from bot.store import Pending, Store

__all__ = ["DeliveryError", "Merge", "Outbox", "Send", "Ticket", "decode_reply", "encode_reply"]

log = logging.getLogger(__name__)

# Sends one reply to a chat; raises DeliveryError when it did not get through.
Send = Callable[[str, Reply], Awaitable[None]]
# Two consecutive replies to one chat as one message, or None to send them apart.
Merge = Callable[[Reply, Reply], Reply | None]

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
        if not reply.numbered:
            data["numbered"] = False
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
    return Reply(
        str(data["text"]),
        buttons,
        document,
        to=data.get("to", "user"),
        file=file,
        meta=meta,
        numbered=bool(data.get("numbered", True)),
    )


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
    """Delivers one channel's outbox rows through ``send``.

    ``merge`` (the transport's) joins two replies to one chat into one message, or returns
    None when they must stay apart: a burst of relayed messages to a staff group becomes a
    few messages, sent within the group's rate limit instead of queueing for minutes behind
    it. ``lane``: replies in different lanes of a chat (a staff group's topics) keep their
    order only within their lane, so a topic's lines merge over another topic's.
    """

    def __init__(
        self,
        store: Store,
        channel: str,
        send: Send,
        *,
        merge: Merge | None = None,
        lane: Callable[[Reply], Hashable] = lambda reply: None,
        clock: Callable[[], datetime] = _utc_now,
        poll: float = 2.0,
        settle: timedelta = timedelta(seconds=5),
        max_attempts: int = len(_BACKOFF) + 1,
        batch: int = 100,
    ) -> None:
        self.store = store
        self.channel = channel
        self.send = send
        self.merge = merge
        self.lane = lane
        self.clock = clock
        self.poll = poll
        self.settle = settle
        self.max_attempts = max_attempts
        self.batch = batch
        self._locks: KeyedLocks[str] = KeyedLocks()
        # Other chats' drains (a staff group's), started by ``flush_event``: the rows leased
        # to this process waiting for one, and whether more came while one was running. If
        # the process stops first, the leases run out and ``run`` sends those rows.
        self._held: dict[str, set[int]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()

    async def flush(self, chat_id: str, leased: Sequence[Pending] = ()) -> int:
        """Send the chat's pending replies in order; returns how many were sent.

        ``leased``: rows the caller already holds (``Store.save`` leased them with the
        event), sent without looking them up. Stops at the first reply that must wait (it
        keeps its place) or that another process is sending.
        """
        async with self._locks.hold(chat_id):
            if leased:
                rows = list(leased)
                return await self._send_rows(chat_id, rows, {row.id for row in rows})
            rows = await self.store.call(self.store.pending, self.channel, chat_id, self.batch)
            return await self._send_rows(chat_id, rows, set())

    async def flush_event(
        self, chat_id: str, leased: Sequence[Pending] = (), destinations: Sequence[tuple[str, str]] = ()
    ) -> int:
        """Send what one event of ``chat_id`` committed: that chat's replies now (returns how
        many were sent), replies to other chats of this channel (a handoff's staff group)
        in the background. A staff group is paced by Telegram's per-group limit (20 a
        minute): a user's conversation must not wait for it. ``destinations``: every
        (channel, chat) the event wrote to, leased or not."""
        others: dict[str, list[Pending]] = {c: [] for ch, c in destinations if ch == self.channel and c != chat_id}
        for row in leased:
            if row.channel == self.channel and row.chat_id != chat_id:
                others.setdefault(row.chat_id, []).append(row)
        for other, rows in others.items():
            self.kick(other, rows)
        return await self.flush(chat_id, [row for row in leased if row.chat_id == chat_id])

    def kick(self, chat_id: str, leased: Sequence[Pending] = ()) -> None:
        """Have a background drain send the chat's pending replies (with ``leased``, rows
        this process holds). One drain per chat: what arrives while it sends waits for its
        next pass, where consecutive replies can be merged."""
        self._held.setdefault(chat_id, set()).update(row.id for row in leased)
        if chat_id in self._draining:
            self._dirty.add(chat_id)
            return
        self._draining[chat_id] = asyncio.create_task(self._drain(chat_id), name=f"outbox:{chat_id}")

    async def _drain(self, chat_id: str) -> None:
        try:
            while True:
                self._dirty.discard(chat_id)
                held = self._held.pop(chat_id, set())
                try:
                    async with self._locks.hold(chat_id):
                        rows = await self.store.call(self.store.pending, self.channel, chat_id, self.batch)
                        sent = await self._send_rows(chat_id, rows, held)
                except Exception:
                    log.exception("outbox drain failed", extra={"channel": self.channel, "chat_id": chat_id})
                    return
                more = sent > 0 and len(rows) >= self.batch
                if chat_id not in self._dirty and not more:
                    return
        finally:
            # Popped in the same step as the last check: a later ``kick`` starts a new drain.
            self._draining.pop(chat_id, None)

    async def _take(self, row: Pending, held: set[int], holding: set[int]) -> bool:
        """Whether this process may send ``row`` now (it holds the row's lease after)."""
        if row.id not in held:
            if row.next_try_at > self.clock():
                return False  # waiting out a back-off; later replies keep their place behind it
            if not await self.store.call(self.store.claim, row.id, self.clock(), _LEASE):
                return False  # another process is sending this chat's replies
        holding.add(row.id)
        return True

    async def _send_rows(self, chat_id: str, rows: list[Pending], held: set[int]) -> int:
        """Send ``rows`` in order, merging what ``merge`` allows; ``held``: ids already
        leased to this process. Leases still held at the end are given back."""
        sent: list[int] = []
        holding: set[int] = set()
        tried: set[int] = set()  # sent, or settled by ``_send_one`` (postponed, dropped)
        replies = {row.id: decode_reply(row.payload) for row in rows}
        remaining = list(rows)
        try:
            while remaining:
                if not await self._take(remaining[0], held, holding):
                    break
                group, reply = [remaining[0]], replies[remaining[0].id]
                if self.merge is not None:
                    lane = self.lane(reply)
                    for row in remaining[1:]:
                        if self.lane(replies[row.id]) != lane:
                            continue  # another lane's order is its own: merging over it is fine
                        merged = self.merge(reply, replies[row.id])
                        if merged is None or not await self._take(row, held, holding):
                            break
                        group.append(row)
                        reply = merged
                result = await self._send_one(chat_id, group, reply)
                done = {row.id for row in group}
                tried |= done
                if result == "sent":
                    sent.extend(done)
                if result == "wait":
                    break
                remaining = [row for row in remaining if row.id not in done]
        finally:
            await self.store.call(self.store.mark_sent, sent, self.clock())
            # Held but not tried: behind a reply that must wait, or beyond this pass.
            if untried := (holding | held) - tried:
                await self.store.call(self.store.release, sorted(untried))
        return len(sent)

    async def _send_one(self, chat_id: str, group: list[Pending], reply: Reply) -> Literal["sent", "dropped", "wait"]:
        """Send one message (``group``: the rows merged into ``reply``): sent, dropped for
        good, or postponed (its first row waits; later rows wait behind it)."""
        first = group[0]
        ids = [row.id for row in group]
        where = {"channel": self.channel, "chat_id": chat_id, "outbox_id": ids, "attempt": first.attempts + 1}
        backoff = _BACKOFF[min(first.attempts, len(_BACKOFF) - 1)]
        try:
            await self.send(chat_id, reply)
            return "sent"
        except DeliveryError as exc:
            if exc.permanent or first.attempts + 1 >= self.max_attempts:
                log.error("reply dropped: %s", exc, extra=where)
                for row in group:
                    await self.store.call(self.store.mark_failed, row.id, str(exc))
                return "dropped"  # the next reply may go
            delay = exc.retry_after or backoff
            log.warning("reply not delivered, retrying in %.0f s: %s", delay, exc, extra=where)
        except Exception:
            # A bug or an unknown failure: keep the reply for the retry loop, log the context.
            log.exception("reply sending failed", extra=where)
            delay = backoff
        until = self.clock() + timedelta(seconds=delay)
        await self.store.call(self.store.postpone, first.id, first.attempts + 1, until)
        if len(group) > 1:
            await self.store.call(self.store.release, ids[1:])
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
