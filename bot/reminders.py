"""The reminder scheduler: fires due reminders from the database through the assistant.

Reminders are rows (``bot.store.ReminderRecord``) written in the same transaction as the
state that wants them, so nothing is kept only in memory: at start-up the first pass fires
everything that fell due while the bot was down, then the loop sleeps until the next due
time (at most ``poll`` seconds, so reminders added by another process are seen). Firing is
an ordinary ``Timer`` event: the core decides the text and drops the reminder from the
state, so a reminder fired by two processes at once is still sent once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

from bot.assistant import Assistant
from bot.core.dialogue import Outcome
from bot.core.events import Timer

__all__ = ["Deliver", "ReminderScheduler", "utc_now"]

log = logging.getLogger(__name__)

# Sends a fired reminder's committed outcome (its replies; for an outbox channel, the
# outbox rows leased with it) to (channel, chat id).
Deliver = Callable[[str, str, Outcome], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ReminderScheduler:
    """Polls the store for due reminders of some channels and delivers what the core says."""

    def __init__(
        self,
        assistant: Assistant,
        deliver: Deliver,
        *,
        channels: Collection[str] | None = None,
        clock: Callable[[], datetime] = utc_now,
        poll: float = 30.0,
    ) -> None:
        self.assistant = assistant
        self.deliver = deliver
        self.channels = set(channels) if channels is not None else None
        self.clock = clock
        self.poll = poll

    async def run_due(self) -> int:
        """Fire every reminder due now; returns how many produced a message."""
        now = self.clock()
        due = await self.assistant.store.call(self.assistant.store.due_reminders, now, self.channels)
        sent = 0
        for reminder in due:
            where = {"channel": reminder.channel, "chat_id": reminder.chat_id, "reminder": reminder.key}
            try:
                outcome = await self.assistant.handle(reminder.channel, reminder.chat_id, Timer(reminder.key, at=now))
            except Exception:
                log.exception("reminder could not be processed", extra=where)
                continue
            if not outcome.replies:
                continue
            try:
                await self.deliver(reminder.channel, reminder.chat_id, outcome)
            except Exception:
                # The state already records it as sent; the transcript keeps the text.
                log.exception("reminder could not be delivered", extra=where)
                continue
            sent += 1
        return sent

    async def run(self) -> None:
        """Fire due reminders until cancelled."""
        while True:
            try:
                await self.run_due()
                next_due = await self.assistant.store.call(self.assistant.store.next_due, self.channels)
            except Exception:
                log.exception("reminder pass failed; retrying")
                next_due = None
            wait = self.poll
            if next_due is not None:
                wait = min(self.poll, max(0.5, (next_due - self.clock()).total_seconds()))
            await asyncio.sleep(wait)
