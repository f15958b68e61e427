"""Persistence: conversations, their transcripts, reminders and outgoing messages.

State is stored after every event in the same transaction as the messages it produced, the
reminders it wants, the replies still to be sent (the outbox) and the event's idempotency
keys, with a version number: a writer that loaded an older version gets
``StaleStateError`` instead of overwriting a newer state, so two bot processes sharing one
database never lose an update, and an event whose key is already stored (a redelivered
Telegram update, a second press of one keyboard) raises ``DuplicateEventError`` instead of
being applied twice. Reminders and unsent replies are rows, so a restarted bot (or any
process) finds them with one indexed query; they are never only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ParamSpec, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Index,
    UniqueConstraint,
    bindparam,
    event,
    func,
    insert,
    or_,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from bot.core.state import ConversationState
from bot.migrate import upgrade

__all__ = [
    "AgentRecord",
    "ButtonPayload",
    "Conversation",
    "DueReminder",
    "DuplicateEventError",
    "EventKey",
    "HandoffRecord",
    "Loaded",
    "MessageRecord",
    "OutboxRecord",
    "PairingCodeRecord",
    "PairingFailureRecord",
    "Pending",
    "ReminderRecord",
    "Saved",
    "StaleStateError",
    "Store",
    "engine_url",
]


P = ParamSpec("P")
R = TypeVar("R")


def _now() -> datetime:
    return datetime.now(UTC)


class Conversation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "chat_id", name="uq_conversation_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    state: str = "{}"
    version: int = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)


class MessageRecord(SQLModel, table=True):
    __tablename__ = "message"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    direction: str = Field(max_length=3)  # "in" or "out"
    text: str
    created_at: datetime = Field(default_factory=_now)


class ReminderRecord(SQLModel, table=True):
    """A reminder one conversation wants; mirrors ``ConversationState.reminders``."""

    __tablename__ = "reminder"
    # (channel, due_at): a process's scheduler asks for its own channels' due reminders.
    __table_args__ = (
        UniqueConstraint("conversation_id", "key", name="uq_reminder_key"),
        Index("ix_reminder_channel_due", "channel", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    key: str = Field(max_length=200)
    due_at: datetime = Field(index=True)


class EventKey(SQLModel, table=True):
    """An event already applied, by idempotency key (``telegram:update:42``)."""

    __tablename__ = "event_key"

    key: str = Field(primary_key=True, max_length=200)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    created_at: datetime = Field(default_factory=_now, index=True)


class OutboxRecord(SQLModel, table=True):
    """A reply committed with its event and not yet confirmed sent.

    Rows of one destination chat are sent in id order. ``claimed_until`` is a lease: a
    process sending a row holds it so another process does not send it too.
    """

    __tablename__ = "outbox"
    # Sent rows stay (for the retention period); the hot queries (a chat's unsent rows, chats
    # with unsent rows, the outbox size) look only at the unsent ones: a partial index.
    __table_args__ = (
        Index(
            "ix_outbox_unsent", "channel", "chat_id", "id",
            sqlite_where=text("sent_at IS NULL AND failed IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed IS NULL"),
        ),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64, index=True)
    payload: str
    created_at: datetime = Field(default_factory=_now)
    sent_at: datetime | None = Field(default=None, index=True)
    failed: str | None = None
    attempts: int = 0
    next_try_at: datetime = Field(default_factory=_now)
    claimed_until: datetime | None = None


class HandoffRecord(SQLModel, table=True):
    """A handoff to help-desk staff; mirrors ``ConversationState.handoff`` / ``last_handoff``.

    ``topic`` is the transport's place for it in the staff group (Telegram: "chat:thread"),
    set by the channel when it opens one. ``transcript`` (masked, JSON) is written at close.
    """

    __tablename__ = "handoff"
    # (channel, chat_id, number): the channel finds a handoff's staff-group topic by chat.
    __table_args__ = (
        UniqueConstraint("conversation_id", "number", name="uq_handoff_number"),
        Index("ix_handoff_chat", "channel", "chat_id", "number"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    number: int
    company: str = ""
    reason: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    opened_at: datetime = Field(index=True)
    claimed_at: datetime | None = None
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    staff_name: str | None = None
    resolution: str | None = None
    notes: str = "[]"
    transcript: str | None = None
    topic: str | None = Field(default=None, max_length=64, index=True, unique=True)


class AgentRecord(SQLModel, table=True):
    """A paired card agent: the chat it reports to and the public key it signs with.
    ``last_seq`` is the highest report sequence accepted (replays and old reports are
    refused); ``status`` the last reader and card status it reported (JSON); ``online``
    false once it has been silent too long."""

    __tablename__ = "agent"
    # Every bot process looks for silent agents every few seconds: only paired, online ones.
    __table_args__ = (
        Index(
            "ix_agent_watch", "last_seen_at",
            sqlite_where=text("online IS 1 AND revoked_at IS NULL"),
            postgresql_where=text("online IS true AND revoked_at IS NULL"),
        ),
    )  # fmt: skip

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=100)
    public_key: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=_now)
    revoked_at: datetime | None = None
    last_seq: int = 0
    last_seen_at: datetime | None = None
    online: bool = True  # reported within the silence limit (bot.cardlink.SILENCE)
    status: str = "{}"


class PairingCodeRecord(SQLModel, table=True):
    """A pairing code a chat was shown, by its digest (the code itself is never stored)."""

    __tablename__ = "pairing_code"

    digest: str = Field(primary_key=True, max_length=64)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(default_factory=_now)
    expires_at: datetime
    used_at: datetime | None = None


class PairingFailureRecord(SQLModel, table=True):
    """A wrong pairing code from an address (a network address, or "console")."""

    __tablename__ = "pairing_failure"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=64, index=True)
    at: datetime = Field(default_factory=_now, index=True)


class ButtonPayload(SQLModel, table=True):
    """A button payload too long for a transport (Telegram: 64 bytes), by its digest."""

    __tablename__ = "button_payload"

    key: str = Field(primary_key=True, max_length=40)
    payload: str
    created_at: datetime = Field(default_factory=_now)


@dataclass(frozen=True)
class Pending:
    """An outbox row to send."""

    id: int
    channel: str
    chat_id: str
    payload: str
    attempts: int
    next_try_at: datetime


@dataclass(frozen=True)
class Saved:
    """A committed event: the conversation's new version and the outbox rows leased to
    the saver (see ``Store.save``)."""

    version: int
    claimed: list[Pending]
    # (channel, chat id) of every reply written, leased or not.
    destinations: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DueReminder:
    channel: str
    chat_id: str
    key: str
    due_at: datetime


class StaleStateError(RuntimeError):
    """The conversation changed since it was loaded; reload and handle the event again."""


class DuplicateEventError(RuntimeError):
    """The event's idempotency key is already stored: it was applied before."""


# The statements of the per-message path, built once: SQLAlchemy then reuses their compiled
# form without rebuilding the expression or its cache key on every call.
_FIND_CONVERSATION = select(col(Conversation.id), col(Conversation.state), col(Conversation.version)).where(
    col(Conversation.channel) == bindparam("b_channel"), col(Conversation.chat_id) == bindparam("b_chat")
)
_NEW_CONVERSATION = insert(Conversation)
_SEEN = select(col(EventKey.key)).where(col(EventKey.key).in_(bindparam("b_keys", expanding=True))).limit(1)
_SAVE_STATE = (
    update(Conversation)
    .where(col(Conversation.id) == bindparam("b_id"), col(Conversation.version) == bindparam("b_version"))
    .values(state=bindparam("b_state"), version=bindparam("b_next"), updated_at=bindparam("b_now"))
)
_NEW_KEYS = insert(EventKey)
_NEW_MESSAGES = insert(MessageRecord)
_NEW_OUTBOX = insert(OutboxRecord).returning(col(OutboxRecord.id))
_BACKLOG = (
    select(col(OutboxRecord.id))
    .where(
        col(OutboxRecord.channel) == bindparam("b_channel"),
        col(OutboxRecord.chat_id) == bindparam("b_chat"),
        col(OutboxRecord.sent_at).is_(None),
        col(OutboxRecord.failed).is_(None),
    )
    .limit(1)
)
_MARK_SENT = (
    update(OutboxRecord)
    .where(col(OutboxRecord.id).in_(bindparam("b_ids", expanding=True)))
    .values(sent_at=bindparam("b_now"), claimed_until=None)
)


@dataclass(frozen=True)
class Loaded:
    conversation_id: int
    state: ConversationState
    version: int
    seen: bool = False  # one of the keys given to ``load`` is stored: the event was applied


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def engine_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else Path(path)


def make_private_file(path: Path) -> None:
    """Create the database file and its directory readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        path.touch(mode=0o600)
    path.chmod(0o600)


def _utc(at: datetime) -> datetime:
    """Aware UTC: SQLModel stores aware datetimes (timestamptz on PostgreSQL, UTC on SQLite)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class Store:
    """Conversation repository over any SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        url = engine_url(url)
        self.url = url
        if (path := sqlite_file(url)) is not None:
            make_private_file(path)
        # A pre-ping finds PostgreSQL connections the server closed; a SQLite file has none.
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        self.inline = url.startswith("sqlite")
        self._write_lock: contextlib.AbstractContextManager[object] = (
            threading.Lock() if url.startswith("sqlite") else contextlib.nullcontext()
        )
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # The tables as this code wants them: migrated at start-up (bot.migrate).
        upgrade(self.engine)

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a store method from async code: in a worker thread for a database server,
        inline for SQLite. SQLite's calls take well under a millisecond, and a thread that
        holds SQLite's single write lock while waiting for the GIL (a busy event loop gives
        it up every 5 ms) would make every other writer wait too."""
        if self.inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    def ping(self) -> None:
        """Raise if the database cannot be reached (for /healthz)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        """Close the pooled connections (at shutdown; a closed store reconnects if used)."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session; ``write``: one that writes, which on SQLite waits for the other
        writers of this process on a lock (SQLite allows one writer at a time, and its own
        busy handler waits by sleeping in steps of up to 100 ms)."""
        with self._write_lock if write else contextlib.nullcontext(), Session(self.engine) as session:
            yield session

    def load(self, channel: str, chat_id: str, keys: Collection[str] = ()) -> Loaded:
        """The stored state of a chat, creating the conversation on first contact; with
        ``keys``, also whether the event they name was applied (``Loaded.seen``).

        Plain SQL expressions rather than ORM objects: this runs for every message.
        """
        chat = {"b_channel": channel, "b_chat": chat_id}
        with self.engine.connect() as conn:
            if self._seen(conn, keys):
                return Loaded(0, ConversationState(), 0, seen=True)
            row = conn.execute(_FIND_CONVERSATION, chat).first()
            if row is None:
                now = _now()
                new = {"channel": channel, "chat_id": chat_id, "state": "{}", "version": 0}
                try:
                    with self._write_lock:
                        conn.execute(_NEW_CONVERSATION, {"created_at": now, "updated_at": now, **new})
                        conn.commit()
                except IntegrityError:  # another process created it first
                    conn.rollback()
                row = conn.execute(_FIND_CONVERSATION, chat).one()
            conversation_id, state, version = row
            assert conversation_id is not None
            return Loaded(conversation_id, ConversationState.model_validate_json(state), version)

    @staticmethod
    def _seen(conn: Connection, keys: Collection[str]) -> bool:
        """Whether any of these idempotency keys is stored (the event was applied)."""
        if not keys:
            return False
        return conn.execute(_SEEN, {"b_keys": list(keys)}).first() is not None

    def save(
        self,
        loaded: Loaded,
        state: ConversationState,
        messages: Sequence[tuple[str, str]],
        *,
        keys: Collection[str] = (),
        outbox: Sequence[tuple[str, str, str]] = (),
        lease: timedelta | None = None,
    ) -> Saved:
        """Store ``state`` if nobody else saved since ``loaded``.

        ``keys`` are the event's idempotency keys, ``outbox`` the replies to send as
        (channel, destination chat id, payload); both are committed with the state or not
        at all. With ``lease``, the new outbox rows are leased to the caller at once (and
        returned), except those to a chat with older replies still unsent: the caller sends
        them without another round trip, and nothing overtakes a waiting reply.
        """
        now = _now()
        with self._write_lock, self.engine.connect() as conn:
            change = {
                "b_id": loaded.conversation_id, "b_version": loaded.version, "b_next": loaded.version + 1,
                "b_state": state.model_dump_json(), "b_now": now,
            }  # fmt: skip
            if conn.execute(_SAVE_STATE, change).rowcount != 1:
                conn.rollback()
                raise StaleStateError(f"conversation {loaded.conversation_id} changed since version {loaded.version}")
            cid = loaded.conversation_id
            if keys:
                try:
                    conn.execute(_NEW_KEYS, [{"key": k, "conversation_id": cid, "created_at": now} for k in keys])
                except IntegrityError as exc:  # stored before: nothing else is written
                    conn.rollback()
                    raise DuplicateEventError(f"event {sorted(keys)} was applied before") from exc
            if messages:
                rows = [{"conversation_id": cid, "direction": d, "text": t, "created_at": now} for d, t in messages]
                conn.execute(_NEW_MESSAGES, rows)
            claimed: list[Pending] = []
            if outbox:
                free = set() if lease is None else self._free(conn, outbox)
                lease_until = None if lease is None else now + lease
                values = [
                    {
                        "conversation_id": cid, "channel": channel, "chat_id": chat_id, "payload": payload,
                        "created_at": now, "next_try_at": now, "attempts": 0,
                        "claimed_until": lease_until if (channel, chat_id) in free else None,
                    }
                    for channel, chat_id, payload in outbox
                ]  # fmt: skip
                ids = conn.execute(_NEW_OUTBOX, values).scalars().all()
                claimed = [
                    Pending(int(i or 0), c, chat, p, 0, now)
                    for i, (c, chat, p) in zip(ids, outbox, strict=True)
                    if (c, chat) in free
                ]
            if state.reminders or loaded.state.reminders:
                with Session(bind=conn) as session:
                    self._sync_reminders(session, cid, state)
                    session.flush()
            if (state.handoff, state.last_handoff) != (loaded.state.handoff, loaded.state.last_handoff):
                with Session(bind=conn) as session:
                    self._sync_handoffs(session, cid, state)
                    session.flush()
            conn.commit()
        return Saved(loaded.version + 1, claimed, sorted({(c, chat) for c, chat, _ in outbox}))

    @staticmethod
    def _free(conn: Connection, outbox: Sequence[tuple[str, str, str]]) -> set[tuple[str, str]]:
        """Destinations of these replies with no older reply still unsent: theirs may be
        leased at once (behind a waiting reply, a new one must wait too)."""
        return {
            (channel, chat_id)
            for channel, chat_id in {(c, chat) for c, chat, _ in outbox}
            if conn.execute(_BACKLOG, {"b_channel": channel, "b_chat": chat_id}).first() is None
        }

    # ------------------------------------------------------------------ outbox
    def pending(self, channel: str, chat_id: str, limit: int = 50) -> list[Pending]:
        """Unsent, not failed replies to a chat, oldest first (due or not: order matters)."""
        query = (
            select(OutboxRecord)
            .where(
                OutboxRecord.channel == channel,
                OutboxRecord.chat_id == chat_id,
                col(OutboxRecord.sent_at).is_(None),
                col(OutboxRecord.failed).is_(None),
            )
            .order_by(col(OutboxRecord.id))
            .limit(limit)
        )
        with self.session() as s:
            rows = s.exec(query).all()
            return [Pending(r.id or 0, r.channel, r.chat_id, r.payload, r.attempts, _utc(r.next_try_at)) for r in rows]

    def chats_with_pending(self, channel: str, now: datetime, older_than: timedelta, limit: int = 100) -> list[str]:
        """Chats with replies that are due for another try and not leased by anyone."""
        now = _utc(now)
        query = (
            select(OutboxRecord.chat_id)
            .where(
                OutboxRecord.channel == channel,
                col(OutboxRecord.sent_at).is_(None),
                col(OutboxRecord.failed).is_(None),
                OutboxRecord.next_try_at <= now,
                OutboxRecord.created_at <= now - older_than,
                or_(col(OutboxRecord.claimed_until).is_(None), col(OutboxRecord.claimed_until) < now),
            )
            .distinct()
            .limit(limit)
        )
        with self.session() as s:
            return list(s.exec(query).all())

    def claim(self, row_id: int, now: datetime, lease: timedelta) -> bool:
        """Lease an outbox row for sending; False if another sender holds it or it is done."""
        now = _utc(now)
        stmt = (
            update(OutboxRecord)
            .where(
                col(OutboxRecord.id) == row_id,
                col(OutboxRecord.sent_at).is_(None),
                col(OutboxRecord.failed).is_(None),
                or_(col(OutboxRecord.claimed_until).is_(None), col(OutboxRecord.claimed_until) < now),
            )
            .values(claimed_until=now + lease)
        )
        with self.session(write=True) as s:
            claimed = s.connection().execute(stmt).rowcount == 1
            s.commit()
        return claimed

    def _finish(self, row_ids: Collection[int], **values: object) -> None:
        if not row_ids:
            return
        with self.session(write=True) as s:
            stmt = update(OutboxRecord).where(col(OutboxRecord.id).in_(list(row_ids))).values(**values)
            s.connection().execute(stmt)
            s.commit()

    def mark_sent(self, row_ids: Collection[int], now: datetime) -> None:
        if not row_ids:
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.execute(_MARK_SENT, {"b_ids": list(row_ids), "b_now": _utc(now)})
            conn.commit()

    def release(self, row_ids: Collection[int]) -> None:
        """Give leased rows back unsent (a reply before them must wait)."""
        self._finish(row_ids, claimed_until=None)

    def mark_failed(self, row_id: int, reason: str) -> None:
        """Give up on a reply the transport refuses for good (blocked bot, bad chat)."""
        self._finish([row_id], failed=reason[:500], claimed_until=None)

    def postpone(self, row_id: int, attempts: int, until: datetime) -> None:
        self._finish([row_id], attempts=attempts, next_try_at=_utc(until), claimed_until=None)

    def outbox_size(self, channel: str | None = None) -> int:
        """Replies not yet sent (for /metrics and /healthz)."""
        query = (
            select(func.count())
            .select_from(OutboxRecord)
            .where(
                col(OutboxRecord.sent_at).is_(None),
                col(OutboxRecord.failed).is_(None),
            )
        )
        if channel is not None:
            query = query.where(OutboxRecord.channel == channel)
        with self.session() as s:
            return int(s.exec(query).one())

    # ------------------------------------------------------------------ long button payloads
    def shorten(self, payload: str) -> str:
        """A stable short key for ``payload``, stored so ``expand`` can restore it."""
        key = hashlib.sha256(payload.encode()).hexdigest()[:32]
        with self.session(write=True) as s:
            if s.get(ButtonPayload, key) is None:
                s.add(ButtonPayload(key=key, payload=payload))
                try:
                    s.commit()
                except IntegrityError:  # stored by another process meanwhile
                    s.rollback()
        return key

    def expand(self, key: str) -> str | None:
        with self.session() as s:
            row = s.get(ButtonPayload, key)
            return row.payload if row else None

    @staticmethod
    def _sync_reminders(s: Session, conversation_id: int, state: ConversationState) -> None:
        """Make the conversation's reminder rows equal to ``state.reminders``."""
        rows = s.exec(select(ReminderRecord).where(ReminderRecord.conversation_id == conversation_id)).all()
        wanted = {r.key: _utc(r.due) for r in state.reminders}
        have = {row.key: row for row in rows}
        for key, row in have.items():
            if key not in wanted:
                s.delete(row)
            elif _utc(row.due_at) != wanted[key]:
                row.due_at = wanted[key]
                s.add(row)
        new = [k for k in wanted if k not in have]
        if new:
            conv = s.get(Conversation, conversation_id)
            assert conv is not None
            for key in new:
                s.add(
                    ReminderRecord(
                        conversation_id=conversation_id,
                        channel=conv.channel,
                        chat_id=conv.chat_id,
                        key=key,
                        due_at=wanted[key],
                    )
                )

    @staticmethod
    def _sync_handoffs(s: Session, conversation_id: int, state: ConversationState) -> None:
        """Make the handoff rows say what ``state.handoff`` and ``state.last_handoff`` say."""
        conv = s.get(Conversation, conversation_id)
        assert conv is not None
        company = state.active_company
        for handoff in (state.last_handoff, state.handoff):
            if handoff is None:
                continue
            row = s.exec(
                select(HandoffRecord).where(
                    HandoffRecord.conversation_id == conversation_id, HandoffRecord.number == handoff.number
                )
            ).first()
            if row is None:
                row = HandoffRecord(
                    conversation_id=conversation_id, channel=conv.channel, chat_id=conv.chat_id,
                    number=handoff.number, reason=handoff.reason, status=handoff.status, opened_at=handoff.opened_at,
                    company=company.name if company and not company.placeholder else "",
                )  # fmt: skip
            row.status, row.claimed_at, row.answered_at = handoff.status, handoff.claimed_at, handoff.answered_at
            row.closed_at, row.staff_name, row.resolution = handoff.closed_at, handoff.staff_name, handoff.resolution
            row.notes = json.dumps(handoff.notes, ensure_ascii=False)
            if handoff.status == "closed" and row.transcript is None:
                s.flush()  # this event's messages are in the session's transaction already
                since = _utc(handoff.opened_at)
                lines = s.exec(
                    select(MessageRecord)
                    .where(MessageRecord.conversation_id == conversation_id, MessageRecord.created_at >= since)
                    .order_by(col(MessageRecord.id))
                ).all()
                row.transcript = json.dumps(
                    [[m.direction, m.text, _utc(m.created_at).isoformat()] for m in lines], ensure_ascii=False
                )
            s.add(row)

    # ------------------------------------------------------------------ handoffs
    def handoff_topic(self, channel: str, chat_id: str, number: int) -> str | None:
        """The staff-group topic of a conversation's handoff, if one was opened."""
        query = select(HandoffRecord.topic).where(
            HandoffRecord.channel == channel, HandoffRecord.chat_id == chat_id, HandoffRecord.number == number
        )
        with self.session() as s:
            return s.exec(query).first()

    def set_handoff_topic(self, channel: str, chat_id: str, number: int, topic: str) -> str:
        """Record the topic opened for a handoff unless one is recorded already (another
        process opened one first); returns the topic to use."""
        stmt = (
            update(HandoffRecord)
            .where(
                col(HandoffRecord.channel) == channel,
                col(HandoffRecord.chat_id) == chat_id,
                col(HandoffRecord.number) == number,
                col(HandoffRecord.topic).is_(None),
            )
            .values(topic=topic)
        )
        with self.session(write=True) as s:
            s.connection().execute(stmt)
            s.commit()
        return self.handoff_topic(channel, chat_id, number) or topic

    def conversation_of_topic(self, topic: str) -> tuple[str, str] | None:
        """(channel, chat id) of the user whose handoff has this staff-group topic."""
        query = select(HandoffRecord.channel, HandoffRecord.chat_id).where(HandoffRecord.topic == topic)
        with self.session() as s:
            row = s.exec(query).first()
            return (row[0], row[1]) if row else None

    def handoffs_since(self, since: datetime) -> list[HandoffRecord]:
        """Handoffs opened at or after ``since``, oldest first (for the help-desk lead's export)."""
        query = select(HandoffRecord).where(HandoffRecord.opened_at >= _utc(since)).order_by(col(HandoffRecord.id))
        with self.session() as s:
            return list(s.exec(query).all())

    def due_reminders(
        self, now: datetime, channels: Collection[str] | None = None, limit: int = 100
    ) -> list[DueReminder]:
        """Reminders due at ``now`` or earlier, oldest first, optionally of some channels only."""
        query = select(ReminderRecord).where(ReminderRecord.due_at <= _utc(now))
        if channels is not None:
            query = query.where(ReminderRecord.channel.in_(list(channels)))  # type: ignore[attr-defined]
        with self.session() as s:
            rows = s.exec(query.order_by(ReminderRecord.due_at).limit(limit)).all()  # type: ignore[arg-type]
            return [DueReminder(r.channel, r.chat_id, r.key, _utc(r.due_at)) for r in rows]

    def next_due(self, channels: Collection[str] | None = None) -> datetime | None:
        """When the earliest reminder (of some channels) falls due, if any."""
        query = select(ReminderRecord)
        if channels is not None:
            query = query.where(ReminderRecord.channel.in_(list(channels)))  # type: ignore[attr-defined]
        with self.session() as s:
            row = s.exec(query.order_by(ReminderRecord.due_at).limit(1)).first()  # type: ignore[arg-type]
            return _utc(row.due_at) if row else None

    def transcript(self, channel: str, chat_id: str) -> list[MessageRecord]:
        with self.session() as s:
            conv = s.exec(
                select(Conversation).where(Conversation.channel == channel, Conversation.chat_id == chat_id)
            ).first()
            if conv is None:
                return []
            return list(
                s.exec(
                    select(MessageRecord).where(MessageRecord.conversation_id == conv.id).order_by(MessageRecord.id)  # type: ignore[arg-type]
                ).all()
            )
