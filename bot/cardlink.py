"""The bot's side of the card agent: pairing, signed reports, silence.

``bot.api`` turns HTTP requests into calls here; the registry rules (codes, lock-out,
signatures, sequence numbers) are ``bot.agents``'. What passes becomes an event of the
paired chat's conversation (``AgentReport``), handled by the assistant like any other,
and its replies go out through the channel's ``deliver`` (the outbox for Telegram, the
screen for ``portpal chat``).

A report carries the agent's status now and the changes since its last accepted report.
Changes older than ``LATE`` were kept while the bot was unreachable: the conversation
gets them counted and the current status, not one message each about a card taken out
an hour ago. An agent silent for ``SILENCE`` (it sends a heartbeat every 30 s) is marked
offline by ``watch`` in whichever bot process sees it first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from bot.agents import Accepted, Agents
from bot.assistant import Assistant
from bot.core.events import AgentReport, CardChange, CardReader
from bot.reminders import Deliver, utc_now

__all__ = [
    "LATE",
    "SILENCE",
    "BadRequestError",
    "CardLink",
    "PairRequest",
    "RateLimitedError",
    "Report",
]

log = logging.getLogger(__name__)

SILENCE = timedelta(minutes=2)
LATE = timedelta(seconds=60)
PAIR_REQUESTS = 10  # per address and minute, right code or wrong
MAX_CHANGES = 200


class BadRequestError(ValueError):
    """The request body is not what the protocol says; the message says what is wrong."""


class RateLimitedError(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; try again in {retry_after} s")
        self.retry_after = retry_after


# Names and texts an agent sends are shown in the chat and stored (PostgreSQL refuses NUL):
# no control characters.
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class PairRequest(BaseModel):
    code: str = Field(max_length=40)
    public_key: str = Field(min_length=40, max_length=100)
    name: str = Field(default="", max_length=100, pattern=_PRINTABLE)


class _Reader(BaseModel):
    name: str = Field(max_length=200, pattern=_PRINTABLE)
    card: bool = False
    atr: str = Field(default="", max_length=200, pattern=_PRINTABLE)


class _Status(BaseModel):
    service: bool
    error: str = Field(default="", max_length=500, pattern=_PRINTABLE)
    readers: list[_Reader] = Field(default_factory=list, max_length=32)


class _Change(BaseModel):
    kind: Literal["service_up", "service_down", "reader_added", "reader_removed", "card_inserted", "card_removed"]
    reader: str = Field(default="", max_length=200, pattern=_PRINTABLE)
    atr: str = Field(default="", max_length=200, pattern=_PRINTABLE)
    at: float


class Report(BaseModel):
    status: _Status
    changes: list[_Change] = Field(default_factory=list, max_length=MAX_CHANGES)


def parse(model: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` as ``model``; BadRequestError names the first problem."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequestError(f"{where}: {first['msg']}") from exc


class _Window:
    """At most ``limit`` events per key in the last ``span`` seconds (this process)."""

    def __init__(self, limit: int, span: float = 60.0) -> None:
        self.limit, self.span = limit, span
        self._seen: defaultdict[str, deque[float]] = defaultdict(deque)

    def check(self, key: str) -> None:
        now = time.monotonic()
        seen = self._seen[key]
        while seen and seen[0] <= now - self.span:
            seen.popleft()
        if len(seen) >= self.limit:
            raise RateLimitedError(int(seen[0] + self.span - now) + 1)
        seen.append(now)
        if len(self._seen) > 10_000:  # forget idle addresses
            for stale in [k for k, v in self._seen.items() if not v or v[-1] <= now - self.span]:
                del self._seen[stale]


class CardLink:
    """Turns the card agents' requests into conversation events and delivers the replies."""

    def __init__(self, assistant: Assistant, deliver: Deliver, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.assistant = assistant
        self.store = assistant.store
        self.agents = Agents(self.store, clock)
        self.deliver = deliver
        self.clock = clock
        self._pairs = _Window(PAIR_REQUESTS)

    async def _tell(self, channel: str, chat_id: str, event: AgentReport) -> None:
        """The event through the conversation; its replies to the user. A failure to
        deliver is logged: the state and transcript already hold it."""
        outcome = await self.assistant.handle(channel, chat_id, event)
        if outcome.replies:
            try:
                await self.deliver(channel, chat_id, outcome)
            except Exception:
                log.exception("card agent news could not be delivered: %s:%s %s", channel, chat_id, event.kind)

    # ------------------------------------------------------------------ pairing
    async def pair(self, body: bytes, address: str) -> dict[str, str]:
        """Redeem a pairing code; raises BadRequestError, RateLimitedError or
        ``bot.agents.PairingRefusedError``."""
        self._pairs.check(address)
        request = parse(PairRequest, body)
        assert isinstance(request, PairRequest)
        paired = await self.store.call(
            self.agents.redeem, request.code, address, public_key=request.public_key, name=request.name
        )
        log.info("card agent paired: %s to %s:%s", paired.name, paired.channel, paired.chat_id)
        await self._tell(
            paired.channel,
            paired.chat_id,
            AgentReport("paired", paired.name, replaced=paired.replaced, at=self.clock()),
        )
        return {"agent_id": paired.agent_id, "name": paired.name}

    # ------------------------------------------------------------------ reports
    async def report(self, agent_id: str, path: str, timestamp: int, seq: int, body: bytes, signature: str) -> Accepted:
        """A signed report: checked (``ReportRefusedError`` says why not), then told."""
        accepted = await self.store.call(self.agents.accept, agent_id, "POST", path, timestamp, seq, body, signature)
        report = parse(Report, body)
        assert isinstance(report, Report)
        agent = accepted.agent
        status = report.status.model_dump_json()
        now = self.clock()
        fresh = [c for c in report.changes if now - datetime.fromtimestamp(c.at, UTC) <= LATE]
        late = len(report.changes) - len(fresh)
        if fresh or late or not accepted.was_online or status != agent.status:
            event = AgentReport(
                "report",
                agent.name,
                service=report.status.service,
                error=report.status.error,
                readers=tuple(CardReader(r.name, r.card, r.atr) for r in report.status.readers),
                changes=tuple(
                    CardChange(c.kind, c.reader, c.atr, datetime.fromtimestamp(c.at, UTC))
                    for c in sorted(fresh, key=lambda c: c.at)
                ),
                late=late,
                at=now,
            )
            await self._tell(agent.channel, agent.chat_id, event)
            await self.store.call(self.agents.save_status, agent.id, status)
        return accepted

    async def unpair(self, agent_id: str, path: str, timestamp: int, seq: int, body: bytes, signature: str) -> None:
        """``portpal-agent unpair``: a signed request like a report; the chat is told."""
        await self.store.call(self.agents.accept, agent_id, "POST", path, timestamp, seq, body, signature)
        agent = await self.store.call(self.agents.revoke, agent_id)
        if agent is not None:
            log.info("card agent unpaired from the PC: %s (%s:%s)", agent.name, agent.channel, agent.chat_id)
            await self._tell(agent.channel, agent.chat_id, AgentReport("unpaired", agent.name, at=self.clock()))

    # ------------------------------------------------------------------ silence
    async def check_silence(self) -> int:
        """Mark agents silent for ``SILENCE`` offline and tell their conversations."""
        gone = await self.store.call(self.agents.gone_silent, self.clock() - SILENCE)
        for agent in gone:
            where = f"{agent.channel}:{agent.chat_id}"
            log.info("card agent offline (silent for %s): %s (%s)", SILENCE, agent.name, where)
            try:
                await self._tell(agent.channel, agent.chat_id, AgentReport("offline", agent.name, at=self.clock()))
            except Exception:
                log.exception("could not tell %s:%s that its card agent is offline", agent.channel, agent.chat_id)
        return len(gone)

    async def watch(self, every: float = 15.0) -> None:
        """``check_silence`` until cancelled."""
        while True:
            try:
                await self.check_silence()
            except Exception:
                log.exception("card agent silence check failed; retrying")
            await asyncio.sleep(every)
