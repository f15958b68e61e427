"""A user's data, found, exported and deleted everywhere it is kept; and the retention purge.

Where a chat's data lives: its conversation row (the state, with the company profile),
its transcript (``message``), reminders, applied event keys, outbox rows (its replies and
the staff group's messages about it), handoff records, card agents and pairing codes, and
the documents rendered for it (``<documents dir>/<channel>/<hashed chat>/``). ``delete``
removes all of it in one transaction, then the files. ``purge`` does the same for every
conversation untouched for the retention period, drops sent outbox rows and event keys
older than a week (or the retention period, if shorter) and button payloads older than
the retention period.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select

from bot.store import (
    AgentRecord,
    ButtonPayload,
    Conversation,
    EventKey,
    HandoffRecord,
    MessageRecord,
    OutboxRecord,
    PairingCodeRecord,
    ReminderRecord,
    Store,
)

__all__ = ["DELIVERY_KEEP", "Deleted", "Privacy", "chat_documents", "parse_user"]

log = logging.getLogger(__name__)

DELIVERY_KEEP = timedelta(days=7)  # sent outbox rows and applied event keys


def chat_documents(documents_dir: Path, channel: str, chat_id: str) -> Path:
    """Where the assistant writes a chat's documents (as ``Assistant._render`` names it)."""
    return documents_dir / channel / hashlib.sha256(f"{channel}:{chat_id}".encode()).hexdigest()[:16]


def parse_user(text: str) -> tuple[str, str]:
    """``telegram:4242`` -> (channel, chat id); ValueError says the expected form."""
    channel, sep, chat_id = text.partition(":")
    if not sep or not channel or not chat_id:
        raise ValueError(f"{text!r} is not a user; give CHANNEL:CHAT_ID, e.g. telegram:4242 or console:local")
    return channel, chat_id


@dataclass
class Deleted:
    """Rows removed per table, and document directories removed."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values()) + self.files


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _handoff(h: HandoffRecord) -> dict[str, Any]:
    return {
        "number": h.number,
        "reason": h.reason,
        "status": h.status,
        "opened_at": _iso(h.opened_at),
        "closed_at": _iso(h.closed_at),
        "resolution": h.resolution,
        "transcript": json.loads(h.transcript) if h.transcript else None,
    }


class Privacy:
    def __init__(self, store: Store, documents_dir: Path) -> None:
        self.store = store
        self.documents_dir = documents_dir

    def _conversation(self, channel: str, chat_id: str) -> Conversation | None:
        query = select(Conversation).where(Conversation.channel == channel, Conversation.chat_id == chat_id)
        with self.store.session() as s:
            return s.exec(query).first()

    # ------------------------------------------------------------------ export
    def export(self, channel: str, chat_id: str) -> dict[str, Any] | None:
        """Everything kept about a chat, as JSON-ready data (None: nothing is kept)."""
        conv = self._conversation(channel, chat_id)
        agents_query = select(AgentRecord).where(AgentRecord.channel == channel, AgentRecord.chat_id == chat_id)
        with self.store.session() as s:
            agents = s.exec(agents_query).all()
            if conv is None and not agents:
                return None
            cid = conv.id if conv else -1
            messages = s.exec(select(MessageRecord).where(MessageRecord.conversation_id == cid)).all()
            reminders = s.exec(select(ReminderRecord).where(ReminderRecord.conversation_id == cid)).all()
            handoffs = s.exec(select(HandoffRecord).where(HandoffRecord.conversation_id == cid)).all()
            outbox = s.exec(select(OutboxRecord).where(OutboxRecord.conversation_id == cid)).all()
        folder = chat_documents(self.documents_dir, channel, chat_id)
        return {
            "user": f"{channel}:{chat_id}",
            "exported_at": datetime.now(UTC).isoformat(),
            "conversation": {
                "created_at": _iso(conv.created_at),
                "updated_at": _iso(conv.updated_at),
                "state": json.loads(conv.state),
            }
            if conv
            else None,
            "messages": [{"direction": m.direction, "text": m.text, "at": _iso(m.created_at)} for m in messages],
            "reminders": [{"key": r.key, "due_at": _iso(r.due_at)} for r in reminders],
            "handoffs": [_handoff(h) for h in handoffs],
            "outbox": [{"to": f"{o.channel}:{o.chat_id}", "sent_at": _iso(o.sent_at)} for o in outbox],
            "card_agents": [
                {"name": a.name, "paired_at": _iso(a.created_at), "revoked_at": _iso(a.revoked_at)} for a in agents
            ],
            "documents": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            if folder.exists()
            else [],
        }

    # ------------------------------------------------------------------ delete
    def delete(self, channel: str, chat_id: str) -> Deleted:
        """Remove every row and file kept about a chat."""
        done = Deleted()
        conv = self._conversation(channel, chat_id)
        with self.store.session(write=True) as s:
            conn = s.connection()
            if conv is not None:
                owned = (
                    ("message", delete(MessageRecord).where(col(MessageRecord.conversation_id) == conv.id)),
                    ("reminder", delete(ReminderRecord).where(col(ReminderRecord.conversation_id) == conv.id)),
                    ("event_key", delete(EventKey).where(col(EventKey.conversation_id) == conv.id)),
                    ("outbox", delete(OutboxRecord).where(col(OutboxRecord.conversation_id) == conv.id)),
                    ("handoff", delete(HandoffRecord).where(col(HandoffRecord.conversation_id) == conv.id)),
                    # Last: the others refer to it.
                    ("conversation", delete(Conversation).where(col(Conversation.id) == conv.id)),
                )
                for name, stmt in owned:
                    done.rows[name] = conn.execute(stmt).rowcount
            agents = delete(AgentRecord).where(col(AgentRecord.channel) == channel, col(AgentRecord.chat_id) == chat_id)
            done.rows["agent"] = conn.execute(agents).rowcount
            codes = delete(PairingCodeRecord).where(
                col(PairingCodeRecord.channel) == channel, col(PairingCodeRecord.chat_id) == chat_id
            )
            done.rows["pairing_code"] = conn.execute(codes).rowcount
            s.commit()
        folder = chat_documents(self.documents_dir, channel, chat_id)
        if folder.exists():
            done.files = sum(1 for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
        log.info("deleted the data of %s:%s: %s rows, %s files", channel, chat_id, sum(done.rows.values()), done.files)
        return done

    # ------------------------------------------------------------------ retention
    def purge(self, older_than: timedelta, now: datetime | None = None) -> Deleted:
        """Delete conversations untouched for ``older_than``, and old delivery records."""
        cutoff = (now or datetime.now(UTC)) - older_than
        query = select(Conversation.channel, Conversation.chat_id).where(col(Conversation.updated_at) < cutoff)
        with self.store.session() as s:
            stale = s.exec(query).all()
        done = Deleted()
        for channel, chat_id in stale:
            one = self.delete(channel, chat_id)
            for name, count in one.rows.items():
                done.rows[name] = done.rows.get(name, 0) + count
            done.files += one.files
        # Delivery records serve a few days (Telegram redelivers an update for at most a day).
        delivered = (now or datetime.now(UTC)) - min(older_than, DELIVERY_KEEP)
        with self.store.session(write=True) as s:
            conn = s.connection()
            sent = col(OutboxRecord.sent_at) < delivered
            done.rows["outbox"] = done.rows.get("outbox", 0) + conn.execute(delete(OutboxRecord).where(sent)).rowcount
            keys = delete(EventKey).where(col(EventKey.created_at) < delivered)
            done.rows["event_key"] = done.rows.get("event_key", 0) + conn.execute(keys).rowcount
            payloads = delete(ButtonPayload).where(col(ButtonPayload.created_at) < cutoff)
            done.rows["button_payload"] = conn.execute(payloads).rowcount
            s.commit()
        if stale or done.total:
            log.info("retention purge (%s): %s conversations, %s rows", older_than, len(stale), sum(done.rows.values()))
        return done
