"""Log set-up: one line per record, with the event's context (chat, update, outbox row).

Modules pass context as ``extra={...}``; the formatter appends the keys it knows, so a
failure line says which update of which chat it was about. Every line is masked as it is
written (ID numbers, mobiles), whoever logged it: a library's debug line with a request's
parameters, an exception quoting a user's text.
"""

from __future__ import annotations

import logging

from forms.masking import mask_text

__all__ = ["CONTEXT_KEYS", "ContextFormatter", "setup_logging"]

CONTEXT_KEYS = ("channel", "chat_id", "update_id", "outbox_id", "attempt", "reminder", "client")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_KEYS if hasattr(record, k))
        return mask_text(f"{line} [{context}]" if context else line)


def setup_logging(level: int = logging.WARNING) -> None:
    """Warnings and errors from everything; start-up news from the bot runtime."""
    handler = logging.StreamHandler()
    handler.setFormatter(ContextFormatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("bot.runtime").setLevel(logging.INFO)
