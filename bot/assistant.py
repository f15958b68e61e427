"""The service every channel talks to: load state, understand, decide, store, reply.

Channel adapters stay thin: they turn their updates into core events, call
``Assistant.handle`` and render the replies. The state and the transcript of an event are
committed together before the replies are returned, so an acknowledged reply is never
lost and a crash never leaves half an event stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from bot.core.dialogue import Dialogue, Outcome
from bot.core.events import ButtonPress, Event, TextMessage, Timer
from bot.core.messages import default_messages
from bot.store import StaleStateError, Store
from knowledge.index import Retriever, default_retriever
from nlu.interpreter import Interpreter, Understanding
from nlu.lexical import default_lexical

__all__ = ["Assistant"]

log = logging.getLogger(__name__)
_MAX_RETRIES = 5


def _describe(event: Event) -> str:
    if isinstance(event, TextMessage):
        return event.text
    if isinstance(event, ButtonPress):
        return f"[button] {event.payload}"
    if isinstance(event, Timer):
        return f"[timer] {event.key}"
    return f"/{event.name} {event.args}".strip()


class Assistant:
    """Runs one event of one conversation at a time; different conversations concurrently."""

    def __init__(
        self,
        store: Store,
        interpreter: Interpreter | None = None,
        retriever: Retriever | None = None,
    ) -> None:
        self.store = store
        self.retriever = retriever or default_retriever()
        self.interpreter: Interpreter = interpreter or default_lexical()
        self.dialogue = Dialogue(self.retriever, default_messages())
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def understand(self, event: Event) -> Understanding | None:
        if isinstance(event, TextMessage) and event.text.strip():
            return await self.interpreter.parse(event.text)
        return None

    async def handle(self, channel: str, chat_id: str, event: Event) -> Outcome:
        """Process ``event`` for a chat and return the committed outcome."""
        understanding = await self.understand(event)
        async with self._locks[(channel, chat_id)]:
            for attempt in range(_MAX_RETRIES):
                loaded = await asyncio.to_thread(self.store.load, channel, chat_id)
                outcome = self.dialogue.handle(loaded.state, event, understanding)
                messages = [("in", _describe(event))] + [("out", r.text) for r in outcome.replies]
                try:
                    await asyncio.to_thread(self.store.save, loaded, outcome.state, messages)
                except StaleStateError:
                    log.info("stale state, retrying", extra={"channel": channel, "attempt": attempt})
                    continue
                return outcome
        raise StaleStateError(f"{channel}:{chat_id}: gave up after {_MAX_RETRIES} concurrent updates")
