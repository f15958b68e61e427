"""Outgoing replies: what the core asks a channel adapter to show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Button", "Document", "FormRequest", "Reply"]


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
class FormRequest:
    """A document the core wants made from a profile; the assistant renders it to a file
    (I/O the core does not do) and turns the reply into one carrying a ``Document``."""

    form_id: str
    values: tuple[tuple[str, str], ...]
    lang: str = "zh"


@dataclass(frozen=True)
class Reply:
    """One message. ``buttons`` render as an inline keyboard or numbered options."""

    text: str
    buttons: tuple[Button, ...] = ()
    document: Document | None = None
    form: FormRequest | None = None
    meta: dict[str, object] = field(default_factory=dict, compare=False)
