"""Outgoing replies: what the core asks a channel adapter to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Button", "Document", "Reply"]


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
class Reply:
    """One message. ``buttons`` render as an inline keyboard or numbered options."""

    text: str
    buttons: tuple[Button, ...] = ()
    document: Document | None = None
    meta: dict[str, object] = field(default_factory=dict, compare=False)
