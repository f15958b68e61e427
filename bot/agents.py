"""Card agents: pairing codes, registration, and accepting signed reports.

The rules, all enforced in the database so that several bot processes agree:

* A pairing code is valid ``CODE_TTL`` (10 minutes) and once; a new ``/pair`` replaces the
  chat's unused code. Only a digest of it is stored.
* An address that sent ``MAX_FAILURES`` (5) wrong codes within ``FAILURE_WINDOW`` is
  refused, right code or not, until the oldest of them has aged out. (A wrong code names
  no chat, so the lock-out is per address; with about 39 bits a code, 5 guesses per
  address per 10 minutes leave guessing hopeless.) The HTTP layer adds a request limit.
* One agent per chat: pairing another PC revokes the first, and the chat is told.
* A report is accepted only from a registered, not revoked agent, signed with its key,
  stamped within ``CLOCK_SKEW`` of the server's time, and with a sequence number above
  the last accepted one: replays, stale and duplicate reports are refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NoReturn

from sqlalchemy import delete, func, update
from sqlmodel import col, select

from bot.store import AgentRecord, PairingCodeRecord, PairingFailureRecord, Store
from cardagent.protocol import canonical, code_digest, normalize_code, verify

__all__ = ["Accepted", "Agents", "Paired", "PairingRefusedError", "ReportRefusedError"]

CODE_TTL = timedelta(minutes=10)
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)

Refusal = Literal["malformed", "unknown", "expired", "used"]
_REFUSALS: dict[str, str] = {
    "unknown": "no chat is waiting for this code; send /pair in the chat for a new one",
    "used": "this code was used already; send /pair in the chat for a new one",
    "expired": "this code has expired (codes last 10 minutes); send /pair in the chat for a new one",
}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Paired:
    agent_id: str
    channel: str
    chat_id: str
    name: str
    replaced: tuple[str, ...]  # names of the chat's agents this one revoked


@dataclass(frozen=True)
class Accepted:
    """A report let through: the agent after it, and whether it had been counted offline."""

    agent: AgentRecord
    seq: int
    was_online: bool


class PairingRefusedError(Exception):
    """``reason``: locked (too many wrong codes from this address), malformed, unknown,
    expired or used."""

    def __init__(self, reason: Literal["locked"] | Refusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ReportRefusedError(Exception):
    """``reason``: unknown (no such agent), revoked, signature, stale (time outside the
    window) or replay (sequence not above the last accepted; ``last_seq`` says which)."""

    def __init__(
        self, reason: Literal["unknown", "revoked", "signature", "stale", "replay"], detail: str, last_seq: int = 0
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.last_seq = last_seq


class Agents:
    """The registry over the store's agent tables; blocking calls (use ``Store.call``)."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------ pairing
    def issue(self, channel: str, chat_id: str, code: str) -> datetime:
        """Record ``code`` as the chat's pairing code (replacing an unused one); returns
        when it expires."""
        now = self.clock()
        with self.store.session(write=True) as s:
            s.connection().execute(
                delete(PairingCodeRecord).where(
                    col(PairingCodeRecord.channel) == channel,
                    col(PairingCodeRecord.chat_id) == chat_id,
                    col(PairingCodeRecord.used_at).is_(None),
                )
            )
            s.add(
                PairingCodeRecord(
                    digest=code_digest(code),
                    channel=channel,
                    chat_id=chat_id,
                    created_at=now,
                    expires_at=now + CODE_TTL,
                )
            )
            s.commit()
        return now + CODE_TTL

    def locked(self, address: str) -> bool:
        since = self.clock() - FAILURE_WINDOW
        query = select(func.count()).where(PairingFailureRecord.address == address, PairingFailureRecord.at > since)
        with self.store.session() as s:
            return int(s.exec(query).one()) >= MAX_FAILURES

    def _fail(self, address: str, reason: Refusal, detail: str) -> NoReturn:
        with self.store.session(write=True) as s:
            s.add(PairingFailureRecord(address=address, at=self.clock()))
            s.commit()
        raise PairingRefusedError(reason, detail)

    def redeem(self, typed: str, address: str, *, public_key: str, name: str) -> Paired:
        """Exchange a code for an agent registration; PairingRefusedError says why not."""
        if self.locked(address):
            raise PairingRefusedError("locked", f"too many wrong codes from {address}; try again in 10 minutes")
        try:
            code = normalize_code(typed)
        except ValueError as exc:
            self._fail(address, "malformed", str(exc))
        now = self.clock()
        digest = code_digest(code)
        name = name.strip()[:100] or "PC"
        agent_id = "ag_" + secrets.token_urlsafe(12)
        refusal: Refusal | None = None
        with self.store.session(write=True) as s:
            row = s.get(PairingCodeRecord, digest)
            if row is None:
                refusal = "unknown"
            elif row.used_at is not None:
                refusal = "used"
            elif _aware(row.expires_at) <= now:
                refusal = "expired"
            else:
                # Claim the code: of two requests with it at once, one wins.
                claim = (
                    update(PairingCodeRecord)
                    .where(col(PairingCodeRecord.digest) == digest, col(PairingCodeRecord.used_at).is_(None))
                    .values(used_at=now)
                )
                if s.connection().execute(claim).rowcount != 1:
                    refusal = "used"
            if refusal is not None or row is None:
                s.rollback()
            else:
                channel, chat_id = row.channel, row.chat_id
                mine = (
                    col(AgentRecord.channel) == channel,
                    col(AgentRecord.chat_id) == chat_id,
                    col(AgentRecord.revoked_at).is_(None),
                )
                replaced = tuple(a.name for a in s.exec(select(AgentRecord).where(*mine)).all())
                s.connection().execute(update(AgentRecord).where(*mine).values(revoked_at=now))
                agent = AgentRecord(
                    id=agent_id,
                    channel=channel,
                    chat_id=chat_id,
                    name=name,
                    public_key=public_key,
                    created_at=now,
                    last_seen_at=now,
                )
                s.add(agent)
                s.commit()
        if refusal is not None:
            self._fail(address, refusal, _REFUSALS[refusal])
        return Paired(agent_id, channel, chat_id, name, replaced)

    # ------------------------------------------------------------------ reports
    def accept(
        self, agent_id: str, method: str, path: str, timestamp: int, seq: int, body: bytes, signature: str
    ) -> Accepted:
        """Check a signed report and move the agent's sequence on; ReportRefusedError says why not."""
        now = self.clock()
        with self.store.session() as s:
            agent = s.get(AgentRecord, agent_id)
        if agent is None:
            raise ReportRefusedError("unknown", f"no agent {agent_id}; pair again")
        if not verify(agent.public_key, canonical(method, path, agent_id, timestamp, seq, body), signature):
            raise ReportRefusedError("signature", "the signature does not match this agent's key")
        if agent.revoked_at is not None:
            raise ReportRefusedError("revoked", "this agent was unpaired; pair again")
        if abs(now - datetime.fromtimestamp(timestamp, UTC)) > CLOCK_SKEW:
            raise ReportRefusedError("stale", f"the report's time is more than {CLOCK_SKEW} from the server's")
        stmt = (
            update(AgentRecord)
            .where(
                col(AgentRecord.id) == agent_id,
                col(AgentRecord.last_seq) < seq,
                col(AgentRecord.revoked_at).is_(None),
            )
            .values(last_seq=seq, last_seen_at=now, online=True)
        )
        with self.store.session(write=True) as s:
            moved = s.connection().execute(stmt).rowcount == 1
            s.commit()
            fresh = s.get(AgentRecord, agent_id)
        assert fresh is not None
        if not moved:
            if fresh.revoked_at is not None:
                raise ReportRefusedError("revoked", "this agent was unpaired; pair again")
            raise ReportRefusedError("replay", f"sequence {seq} is not above {fresh.last_seq}", fresh.last_seq)
        return Accepted(fresh, seq, agent.online)

    def save_status(self, agent_id: str, status: str) -> None:
        with self.store.session(write=True) as s:
            s.connection().execute(update(AgentRecord).where(col(AgentRecord.id) == agent_id).values(status=status))
            s.commit()

    def gone_silent(self, cutoff: datetime) -> list[AgentRecord]:
        """Agents that have not reported since ``cutoff``, now marked offline; each is
        returned by one process only (the one whose update flipped it)."""
        silent = (
            col(AgentRecord.online).is_(True),
            col(AgentRecord.revoked_at).is_(None),
            col(AgentRecord.last_seen_at) < cutoff,
        )
        flipped: list[AgentRecord] = []
        with self.store.session(write=True) as s:
            for agent in s.exec(select(AgentRecord).where(*silent)).all():
                stmt = update(AgentRecord).where(col(AgentRecord.id) == agent.id, *silent).values(online=False)
                if s.connection().execute(stmt).rowcount == 1:
                    flipped.append(agent)
            for agent in flipped:
                s.expunge(agent)  # as read, not reloaded after the commit
            s.commit()
        return flipped

    def get(self, agent_id: str) -> AgentRecord | None:
        with self.store.session() as s:
            return s.get(AgentRecord, agent_id)

    # ------------------------------------------------------------------ lookups, revoking
    def of_chat(self, channel: str, chat_id: str) -> AgentRecord | None:
        """The chat's paired agent, if any."""
        query = select(AgentRecord).where(
            AgentRecord.channel == channel, AgentRecord.chat_id == chat_id, col(AgentRecord.revoked_at).is_(None)
        )
        with self.store.session() as s:
            return s.exec(query).first()

    def revoke(self, agent_id: str) -> AgentRecord | None:
        """Unpair one agent (``portpal-agent unpair``); the agent as it was, or None."""
        with self.store.session(write=True) as s:
            agent = s.get(AgentRecord, agent_id)
            if agent is None or agent.revoked_at is not None:
                return None
            agent.revoked_at = self.clock()
            s.add(agent)
            s.commit()
            s.refresh(agent)
            return agent

    def revoke_chat(self, channel: str, chat_id: str) -> list[str]:
        """Unpair the chat's agents (/unpair); their names."""
        agent = self.of_chat(channel, chat_id)
        if agent is None:
            return []
        self.revoke(agent.id)
        return [agent.name]
