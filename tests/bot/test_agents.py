"""Pairing and report checks of the card-agent registry, on SQLite and PostgreSQL: expiry,
reuse, brute force, replay, stale and forged reports, revoked agents, a second agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.agents import Agents, PairingRefusedError, ReportRefusedError
from bot.store import Store
from cardagent.protocol import canonical, format_code, new_code, public_key_text, sign

CHAT = ("telegram", "4242")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def registry(db_url: str) -> Iterator[tuple[Agents, Clock]]:
    store = Store(db_url)
    clock = Clock()
    yield Agents(store, clock), clock
    store.close()


def pair(agents: Agents, code: str, address: str = "127.0.0.1", name: str = "财务室电脑"):
    key = Ed25519PrivateKey.generate()
    return agents.redeem(format_code(code).lower(), address, public_key=public_key_text(key), name=name), key


def report(agents: Agents, agent_id: str, key, seq: int, at: datetime, body: bytes = b'{"events": []}'):
    stamp = int(at.timestamp())
    signature = sign(key, canonical("POST", "/agent/events", agent_id, stamp, seq, body))
    return agents.accept(agent_id, "POST", "/agent/events", stamp, seq, body, signature)


def test_a_code_pairs_once_within_ten_minutes(registry):
    agents, clock = registry
    code = new_code()
    agents.issue(*CHAT, code)
    paired, _ = pair(agents, code)
    assert (paired.channel, paired.chat_id, paired.name, paired.replaced) == (*CHAT, "财务室电脑", ())
    assert agents.of_chat(*CHAT).id == paired.agent_id  # type: ignore[union-attr]
    with pytest.raises(PairingRefusedError) as used:
        pair(agents, code)
    assert used.value.reason == "used"

    late = new_code()
    agents.issue(*CHAT, late)
    clock.now += timedelta(minutes=10, seconds=1)
    with pytest.raises(PairingRefusedError) as expired:
        pair(agents, late)
    assert expired.value.reason == "expired" and "/pair" in str(expired.value)


def test_a_new_pair_command_replaces_the_chats_unused_code(registry):
    agents, _ = registry
    first, second = new_code(), new_code()
    agents.issue(*CHAT, first)
    agents.issue(*CHAT, second)
    with pytest.raises(PairingRefusedError) as gone:
        pair(agents, first)
    assert gone.value.reason == "unknown"
    assert pair(agents, second)[0].chat_id == CHAT[1]


def test_five_wrong_codes_lock_the_address_out_even_for_the_right_code(registry):
    agents, clock = registry
    code = new_code()
    agents.issue(*CHAT, code)
    reasons = []
    for guess in [new_code() for _ in range(4)] + ["AB0O-1234"]:
        with pytest.raises(PairingRefusedError) as wrong:
            pair(agents, guess, address="203.0.113.9")
        reasons.append(wrong.value.reason)
    assert reasons == ["unknown"] * 4 + ["malformed"]
    with pytest.raises(PairingRefusedError) as locked:
        pair(agents, code, address="203.0.113.9")
    assert locked.value.reason == "locked"
    assert pair(agents, code, address="198.51.100.7")[0].chat_id == CHAT[1]  # another address is not locked
    clock.now += timedelta(minutes=10, seconds=1)
    assert not agents.locked("203.0.113.9")


def test_reports_must_be_signed_fresh_and_in_sequence(registry):
    agents, clock = registry
    code = new_code()
    agents.issue(*CHAT, code)
    paired, key = pair(agents, code)
    assert report(agents, paired.agent_id, key, 1, clock.now).seq == 1
    with pytest.raises(ReportRefusedError) as replay:
        report(agents, paired.agent_id, key, 1, clock.now)  # the same request again
    assert (replay.value.reason, replay.value.last_seq) == ("replay", 1)
    with pytest.raises(ReportRefusedError) as stale:
        report(agents, paired.agent_id, key, 2, clock.now - timedelta(minutes=6))
    assert stale.value.reason == "stale"
    with pytest.raises(ReportRefusedError) as forged:
        report(agents, paired.agent_id, Ed25519PrivateKey.generate(), 3, clock.now)
    assert forged.value.reason == "signature"
    with pytest.raises(ReportRefusedError) as unknown:
        report(agents, "ag_nobody", key, 4, clock.now)
    assert unknown.value.reason == "unknown"
    # A signature is over the body too: another body with a captured signature fails.
    stamp = int(clock.now.timestamp())
    signature = sign(key, canonical("POST", "/agent/events", paired.agent_id, stamp, 5, b"{}"))
    with pytest.raises(ReportRefusedError):
        agents.accept(paired.agent_id, "POST", "/agent/events", stamp, 5, b'{"events": [1]}', signature)
    assert report(agents, paired.agent_id, key, 9, clock.now).seq == 9  # gaps are fine
    agents.save_status(paired.agent_id, json.dumps({"service": True}))
    assert json.loads(agents.of_chat(*CHAT).status) == {"service": True}  # type: ignore[union-attr]


def test_a_revoked_agent_and_a_replaced_one_are_refused(registry):
    agents, clock = registry
    code = new_code()
    agents.issue(*CHAT, code)
    first, first_key = pair(agents, code, name="前台电脑")
    code = new_code()
    agents.issue(*CHAT, code)
    second, second_key = pair(agents, code, name="财务室电脑")
    assert second.replaced == ("前台电脑",)  # one agent per chat: the chat is told which went
    with pytest.raises(ReportRefusedError) as replaced:
        report(agents, first.agent_id, first_key, 1, clock.now)
    assert replaced.value.reason == "revoked"
    assert report(agents, second.agent_id, second_key, 1, clock.now).seq == 1
    assert agents.revoke_chat(*CHAT) == ["财务室电脑"] and agents.of_chat(*CHAT) is None
    with pytest.raises(ReportRefusedError) as revoked:
        report(agents, second.agent_id, second_key, 2, clock.now)
    assert revoked.value.reason == "revoked"
    assert agents.revoke(second.agent_id) is None  # once
