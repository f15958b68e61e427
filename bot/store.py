"""Persistence: conversations, their transcripts and their reminders, in SQLModel tables.

State is stored after every event in the same transaction as the messages it produced and
the reminders it wants, with a version number: a writer that loaded an older version gets
``StaleStateError`` instead of overwriting a newer state, so two bot processes sharing one
database never lose an update. Reminders are rows with a due time, so a restarted bot (or
any process) finds them with one indexed query; they are never only in memory.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, UniqueConstraint, event, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from bot.core.state import ConversationState

__all__ = [
    "Conversation",
    "DueReminder",
    "Loaded",
    "MessageRecord",
    "ReminderRecord",
    "StaleStateError",
    "Store",
    "engine_url",
]


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
    __table_args__ = (UniqueConstraint("conversation_id", "key", name="uq_reminder_key"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    channel: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    key: str = Field(max_length=200)
    due_at: datetime = Field(index=True)


@dataclass(frozen=True)
class DueReminder:
    channel: str
    chat_id: str
    key: str
    due_at: datetime


class StaleStateError(RuntimeError):
    """The conversation changed since it was loaded; reload and handle the event again."""


@dataclass(frozen=True)
class Loaded:
    conversation_id: int
    state: ConversationState
    version: int


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def engine_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _utc(at: datetime) -> datetime:
    """Aware UTC: SQLModel stores aware datetimes (timestamptz on PostgreSQL, UTC on SQLite)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


class Store:
    """Conversation repository over any SQLAlchemy URL (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        url = engine_url(url)
        self.url = url
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if str(path) not in ("", ":memory:"):
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not path.exists():
                    path.touch(mode=0o600)
                path.chmod(0o600)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(self.engine)

    def close(self) -> None:
        """Close the pooled connections (at shutdown; a closed store reconnects if used)."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session

    def load(self, channel: str, chat_id: str) -> Loaded:
        """The stored state of a chat, creating the conversation on first contact."""
        with self.session() as s:
            conv = s.exec(
                select(Conversation).where(Conversation.channel == channel, Conversation.chat_id == chat_id)
            ).first()
            if conv is None:
                conv = Conversation(channel=channel, chat_id=chat_id)
                s.add(conv)
                try:
                    s.commit()
                except IntegrityError:  # another process created it first
                    s.rollback()
                    conv = s.exec(
                        select(Conversation).where(Conversation.channel == channel, Conversation.chat_id == chat_id)
                    ).one()
                s.refresh(conv)
            assert conv.id is not None
            return Loaded(conv.id, ConversationState.model_validate_json(conv.state), conv.version)

    def save(self, loaded: Loaded, state: ConversationState, messages: Sequence[tuple[str, str]]) -> int:
        """Store ``state`` if nobody else saved since ``loaded``; returns the new version."""
        with self.session() as s:
            stmt = (
                update(Conversation)
                .where(
                    Conversation.id == loaded.conversation_id,  # type: ignore[arg-type]
                    Conversation.version == loaded.version,  # type: ignore[arg-type]
                )
                .values(state=state.model_dump_json(), version=loaded.version + 1, updated_at=_now())
            )
            result = s.connection().execute(stmt)
            if result.rowcount != 1:
                s.rollback()
                raise StaleStateError(f"conversation {loaded.conversation_id} changed since version {loaded.version}")
            for direction, text in messages:
                s.add(MessageRecord(conversation_id=loaded.conversation_id, direction=direction, text=text))
            self._sync_reminders(s, loaded.conversation_id, state)
            s.commit()
        return loaded.version + 1

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
