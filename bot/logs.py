"""Log set-up: one line per record, with the event's context (chat, update, outbox row).

Modules pass context as ``extra={...}``; the formatter appends the keys it knows, so a
failure line says which update of which chat it was about. Every line is masked as it is
written (ID numbers, mobiles), whoever logged it: a library's debug line with a request's
parameters, an exception quoting a user's text.

``PORTPAL_LOG_FORMAT=json`` writes one JSON object a line instead (``ts``, ``level``,
``logger``, ``message``, the context keys, ``exc``), for a log collector;
``PORTPAL_LOG_LEVEL=INFO`` adds a line per handled event with its conversation, engine and
latency (``bot.assistant``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from forms.masking import mask_text

__all__ = ["CONTEXT_KEYS", "ContextFormatter", "JsonFormatter", "setup_logging"]

CONTEXT_KEYS = (
    "channel", "chat_id", "conversation_id", "update_id", "event", "engine", "latency_ms", "outbox_id", "attempt",
    "reminder", "client",
)  # fmt: skip
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if hasattr(record, k))
        return mask_text(f"{line} [{context}]" if context else line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, masked like the text lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        for key in CONTEXT_KEYS:
            if hasattr(record, key):
                value = getattr(record, key)
                entry[key] = value if isinstance(value, int | float | bool) or value is None else mask_text(str(value))
        if record.exc_info:
            entry["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: int | str = logging.WARNING, fmt: str = "text") -> None:
    """Records at ``level`` and above from everything (``PORTPAL_LOG_LEVEL``), start-up news
    from the bot runtime; text lines or JSON lines (``PORTPAL_LOG_FORMAT``)."""
    if isinstance(level, str):
        level = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else ContextFormatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own configuration gives its loggers handlers of their own, which would write
    # unmasked lines: ours pass ``log_config=None``, and whatever ran before is undone here.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("bot.runtime").setLevel(min(level, logging.INFO))
