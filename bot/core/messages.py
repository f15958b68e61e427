"""The core's fixed texts, read from ``data/messages.yaml``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Messages", "default_messages"]

MESSAGES_FILE = Path(__file__).resolve().parent / "data" / "messages.yaml"


class Messages:
    """Looks up a text by key and language, falling back to Chinese."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw

    def get(self, key: str, lang: str = "zh", **values: str) -> str:
        node = self._raw
        for part in key.split("."):
            node = node[part]
        # Texts only staff read are plain strings; the user's have a zh and an en version.
        text = node if isinstance(node, str) else str(node.get(lang) or node["zh"])
        return text.format(**values) if values else text


@cache
def default_messages() -> Messages:
    return Messages(yaml.safe_load(MESSAGES_FILE.read_text(encoding="utf-8")))
