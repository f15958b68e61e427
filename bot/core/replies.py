"""Outgoing replies: what the core asks a channel adapter to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Button", "Document", "FileRef", "FormRequest", "Reply", "Target"]

# Who a reply is for: the user of the conversation, or the help-desk staff handling it (the
# conversation's topic in the staff group).
Target = Literal["user", "staff"]


@dataclass(frozen=True)
class Button:
    label: str
    payload: str


@dataclass(frozen=True)
class Document:
    path: Path
    filename: str
    caption: str = ""


@dataclass(frozen=True)
class FileRef:
    """A file the transport already holds (Telegram's file_id), passed on by reference:
    a user's photo to the staff topic, a staff member's document to the user."""

    kind: str  # "document" or "photo"
    ref: str
    name: str = ""


@dataclass(frozen=True)
class FormRequest:
    """A document the core wants made from a profile; the assistant renders it to a file
    (I/O the core does not do) and turns the reply into one carrying a ``Document``."""

    form_id: str
    values: tuple[tuple[str, str], ...]
    lang: str = "zh"


@dataclass(frozen=True)
class Reply:
    """One message. ``buttons`` render as an inline keyboard or numbered options; not numbered
    (``numbered=False``) where the text numbers its own options, which typed numbers choose
    (a multi-select: "1、2" picks options, not the 跳过 and 取消 buttons)."""

    text: str
    buttons: tuple[Button, ...] = ()
    document: Document | None = None
    form: FormRequest | None = None
    to: Target = "user"
    file: FileRef | None = None
    meta: dict[str, object] = field(default_factory=dict, compare=False)
    numbered: bool = True
