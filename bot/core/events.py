"""Incoming events: what a channel adapter hands the core.

Each adapter translates its transport's updates into these; the core never sees a
Telegram object. The card agent's reports arrive the same way (``AgentReport``), turned
into events by ``bot.cardlink`` after their signature and sequence were checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

__all__ = [
    "AgentReport",
    "ButtonPress",
    "CardChange",
    "CardReader",
    "Command",
    "Event",
    "FileMessage",
    "PairingCode",
    "StaffMessage",
    "TextMessage",
    "Timer",
    "without_nul",
]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TextMessage:
    text: str
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class ButtonPress:
    """A pressed button; ``payload`` is what the core put in ``Button.payload``."""

    payload: str
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class Command:
    """A slash command such as ``/start``; ``name`` without the slash, lower case."""

    name: str
    args: str = ""
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)

    @classmethod
    def parse(cls, text: str, update_id: int | None = None) -> Command:
        head, _, args = text.strip().partition(" ")
        name = head.lstrip("/").split("@", 1)[0].lower()
        return cls(name=name, args=args.strip(), update_id=update_id)


@dataclass(frozen=True)
class FileMessage:
    """A file the user sent (a document or a photo). ``ref`` is the transport's handle for
    it (Telegram's file_id): the core keeps the reference, never the content."""

    kind: str  # "document" or "photo"
    ref: str
    name: str = ""
    mime: str = ""
    size: int = 0
    caption: str = ""
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class Timer:
    """A reminder came due; ``key`` is the ``ReminderSpec.key`` the core scheduled."""

    key: str
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class StaffMessage:
    """What help-desk staff said about one user's conversation (in its staff topic).

    It is handled as an event of the *user's* conversation, in order with the user's own.
    ``command`` is ``take``, ``release``, ``close``, ``note``, ``kb`` or ``reveal`` (without
    the slash; ``args`` the rest), or empty for a reply to relay to the user. Only a channel
    that knows the message came from the staff group may make one.
    """

    staff_id: str
    staff_name: str
    text: str = ""
    command: str = ""
    args: str = ""
    file: FileMessage | None = None
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class PairingCode:
    """The user asked to pair a card agent (/pair) and the bot issued ``code`` (the core
    has no random source of its own); ``server`` is where the agent reaches the bot."""

    code: str
    expires_at: datetime
    server: str
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


@dataclass(frozen=True)
class CardReader:
    name: str
    card: bool = False
    atr: str = ""


@dataclass(frozen=True)
class CardChange:
    """One change the agent saw (``kind`` as ``cardagent.monitor.Change``), when it saw it."""

    kind: Literal["service_up", "service_down", "reader_added", "reader_removed", "card_inserted", "card_removed"]
    reader: str = ""
    atr: str = ""
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class AgentReport:
    """News of the chat's card agent (``agent``: the PC's name).

    ``paired``: it was just paired (``replaced``: the PCs it took over from); ``report``: it
    reported ``changes`` (oldest first) and its status after them (``service``, ``error``,
    ``readers``); ``late``: how many older changes it kept while it could not reach the
    bot, summed up by the status rather than told one by one; ``offline``: silent too long;
    ``unpaired``: revoked, from the chat or from the PC (``agent`` empty: none was paired).
    """

    kind: Literal["paired", "report", "offline", "unpaired"]
    agent: str
    service: bool = True
    error: str = ""
    readers: tuple[CardReader, ...] = ()
    changes: tuple[CardChange, ...] = ()
    late: int = 0
    replaced: tuple[str, ...] = ()
    update_id: int | None = None
    at: datetime = field(default_factory=_now, compare=False)


Event = TextMessage | ButtonPress | Command | FileMessage | Timer | StaffMessage | PairingCode | AgentReport

_E = TypeVar("_E")


def without_nul(event: _E) -> _E:
    """``event`` with NUL characters removed from its texts (nested ones too).

    A NUL means nothing in a message, and PostgreSQL cannot store one in a text column:
    it would fail the event's commit (found by tests/bot/test_hostile_store.py).
    """

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("\x00", "") if "\x00" in value else value
        if isinstance(value, tuple):
            items = tuple(clean(v) for v in value)
            return value if all(a is b for a, b in zip(items, value, strict=True)) else items
        if is_dataclass(value) and not isinstance(value, type):
            changes = {f.name: new for f in fields(value) if (new := clean(old := getattr(value, f.name))) is not old}
            return replace(value, **changes) if changes else value  # the same event when it had none
        return value

    cleaned: _E = clean(event)
    return cleaned
