"""The card-agent endpoints over real HTTP: the agent's own client (urllib) against the
bot's ASGI app under uvicorn on 127.0.0.1, on SQLite and PostgreSQL. What reaches the
conversation is what the channel's ``deliver`` gets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.api import create_app
from bot.assistant import Assistant
from bot.cardlink import SILENCE, CardLink
from bot.core.events import Command, TextMessage
from bot.metrics import Metrics
from bot.serving import agent_endpoint
from bot.store import Store
from cardagent.client import RefusedError, check_server, pair, post_signed
from cardagent.protocol import PATH_EVENTS, PATH_PAIR, PATH_UNPAIR, normalize_code
from tests.auxil.rawhttp import resident_kb, send_chunked

CHAT = ("console", "alice")


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Bot:
    """An assistant with the card link served on a free loopback port."""

    def __init__(self, store: Store, lexical) -> None:
        self.assistant = Assistant(store, lexical)
        self.clock = Clock()
        self.told: list[tuple[str, str, str]] = []
        self.link = CardLink(self.assistant, self.deliver, clock=self.clock)
        self.url = ""

    async def deliver(self, channel, chat_id, outcome) -> None:
        self.told.extend((channel, chat_id, r.text) for r in outcome.replies)

    async def say(self, text: str) -> str:
        event = Command.parse(text) if text.startswith("/") else TextMessage(text)
        outcome = await self.assistant.handle(*CHAT, event)
        return "\n".join(r.text for r in outcome.replies)

    async def code(self) -> str:
        text = await self.say("/pair")
        return text.split("portpal-agent pair ", 1)[1].split()[0]

    async def paired_agent(self, name: str = "财务室电脑") -> tuple[str, Ed25519PrivateKey]:
        key = Ed25519PrivateKey.generate()
        answer = await asyncio.to_thread(pair, self.url, await self.code(), key, name)
        return answer["agent_id"], key

    async def send(self, agent_id, key, seq, payload=None, path=PATH_EVENTS):
        payload = payload if payload is not None else {"status": {"service": True, "readers": []}, "changes": []}
        return await asyncio.to_thread(post_signed, self.url, path, agent_id, key, seq, payload)


@pytest.fixture
async def bot(db_url, lexical):
    store = Store(db_url)
    b = Bot(store, lexical)
    async with agent_endpoint(b.link, "127.0.0.1", 0) as url:
        assert url is not None
        b.url = b.assistant.agent_url = url
        yield b
    store.close()


def status(card: bool) -> dict:
    return {"service": True, "error": "", "readers": [{"name": "R 00", "card": card, "atr": "3B 88" if card else ""}]}


async def test_pair_then_report_reaches_the_conversation_and_the_code_is_not_stored(bot, db_url):
    code = await bot.code()
    assert code.count("-") == 1 and len(normalize_code(code)) == 8
    agent_id, key = await bot.paired_agent()
    assert bot.told[-1] == (
        *CHAT,
        "已连接：电脑 财务室电脑。插拔卡片时我会告诉您；随时可以问“我的卡插好了吗”。发送 /unpair 断开。",
    )
    now = datetime.now(UTC).timestamp()
    change = {"kind": "card_inserted", "reader": "R 00", "atr": "3B 88", "at": now}
    assert await bot.send(agent_id, key, 1, {"status": status(True), "changes": [change]}) == {"ok": True, "seq": 1}
    assert bot.told[-1][2] == "检测到读卡器 R 00 中已插入卡片。"
    assert await bot.say("我的卡插好了吗") == "读卡器 R 00 中已插入卡片。"
    # The code is shown once and kept nowhere: not in the transcript, not in the history.
    store = bot.assistant.store
    transcript = [m.text for m in await store.call(store.transcript, *CHAT)]
    assert "****-****" in transcript[1] and not any(code in text for text in transcript)
    state = (await store.call(store.load, *CHAT)).state
    assert not any(code in turn.text for turn in state.history)


async def test_a_heartbeat_with_nothing_new_is_not_a_conversation_event(bot):
    agent_id, key = await bot.paired_agent()
    await bot.send(agent_id, key, 1, {"status": status(False), "changes": []})
    store = bot.assistant.store
    before = await store.call(store.load, *CHAT)
    told = len(bot.told)
    for seq in (2, 3, 4):
        await bot.send(agent_id, key, seq, {"status": status(False), "changes": []})
    after = await store.call(store.load, *CHAT)
    assert len(bot.told) == told
    assert after.version == before.version, "heartbeats only touch the agent's row"


async def test_a_resent_report_is_refused_as_a_replay_with_the_last_sequence(bot):
    agent_id, key = await bot.paired_agent()
    change = {"kind": "card_removed", "reader": "R 00", "atr": "", "at": datetime.now(UTC).timestamp()}
    await bot.send(agent_id, key, 5, {"status": status(False), "changes": [change]})
    told = len(bot.told)
    with pytest.raises(RefusedError) as replay:
        await bot.send(agent_id, key, 5, {"status": status(False), "changes": [change]})
    assert (replay.value.status, replay.value.error, replay.value.last_seq) == (409, "replay", 5)
    with pytest.raises(RefusedError):
        await bot.send(agent_id, key, 4)
    assert len(bot.told) == told, "the change was told once"


async def test_forged_unknown_and_revoked_agents_are_refused(bot):
    agent_id, key = await bot.paired_agent()
    with pytest.raises(RefusedError) as forged:
        await bot.send(agent_id, Ed25519PrivateKey.generate(), 1)
    assert (forged.value.status, forged.value.error) == (401, "signature")
    with pytest.raises(RefusedError) as unknown:
        await bot.send("ag_nobody", key, 1)
    assert (unknown.value.status, unknown.value.error) == (401, "unknown")

    assert (await bot.say("/unpair")).startswith("已断开与电脑 财务室电脑 的连接")
    with pytest.raises(RefusedError) as revoked:
        await bot.send(agent_id, key, 2)
    assert (revoked.value.status, revoked.value.error) == (410, "revoked")
    assert "目前没有连接卡片助手" in await bot.say("/unpair")


async def test_unpair_from_the_pc_revokes_and_tells_the_chat(bot):
    agent_id, key = await bot.paired_agent()
    await bot.send(agent_id, key, 1, {}, path=PATH_UNPAIR)
    assert bot.told[-1][2].startswith("已断开与电脑 财务室电脑 的连接")
    with pytest.raises(RefusedError) as revoked:
        await bot.send(agent_id, key, 2)
    assert revoked.value.error == "revoked"


async def test_a_second_pc_replaces_the_first(bot):
    first_id, first_key = await bot.paired_agent("旧电脑")
    await bot.paired_agent("新电脑")
    assert "（之前连接的电脑 旧电脑 已断开" in bot.told[-1][2]
    with pytest.raises(RefusedError) as revoked:
        await bot.send(first_id, first_key, 1)
    assert revoked.value.error == "revoked"


async def test_a_stale_report_is_refused(bot):
    agent_id, key = await bot.paired_agent()
    bot.clock.offset = timedelta(minutes=6)  # the server's clock runs ahead of the PC's
    with pytest.raises(RefusedError) as stale:
        await bot.send(agent_id, key, 1)
    assert (stale.value.status, stale.value.error) == (401, "stale")


async def test_wrong_codes_are_locked_out_and_pair_requests_limited_per_address(bot):
    for _ in range(5):
        with pytest.raises(RefusedError) as wrong:
            await asyncio.to_thread(pair, bot.url, "2222-2222", Ed25519PrivateKey.generate(), "x")
        assert wrong.value.error == "unknown"
    right = await bot.code()
    with pytest.raises(RefusedError) as locked:
        await asyncio.to_thread(pair, bot.url, right, Ed25519PrivateKey.generate(), "x")
    assert (locked.value.status, locked.value.error) == (429, "locked")
    for _ in range(4):  # 10 requests a minute, right or wrong, then 429 before the registry is asked
        with pytest.raises(RefusedError):
            await asyncio.to_thread(pair, bot.url, right, Ed25519PrivateKey.generate(), "x")
    with pytest.raises(RefusedError) as limited:
        await asyncio.to_thread(pair, bot.url, right, Ed25519PrivateKey.generate(), "x")
    assert (limited.value.status, limited.value.error) == (429, "rate_limited") and limited.value.retry_after > 0


async def test_malformed_requests_say_what_is_wrong(bot):
    async with httpx.AsyncClient(base_url=bot.url) as http:
        bad = await http.post(PATH_PAIR, content=b'{"code": "ABCD-EFGH"}')
        assert bad.status_code == 400 and bad.json()["detail"].startswith("public_key:")
        unsigned = await http.post(PATH_EVENTS, content=b"{}")
        assert unsigned.status_code == 401 and "X-PortPal-Signature" in unsigned.json()["detail"]
        huge = await http.post(PATH_PAIR, content=b"x" * 70_000)
        assert huge.status_code == 413
    agent_id, key = await bot.paired_agent()
    with pytest.raises(RefusedError) as malformed:
        await bot.send(agent_id, key, 1, {"status": {"service": "maybe"}})
    assert malformed.value.status == 400 and "status.service" in malformed.value.detail
    # Names are shown in the chat and stored: no control characters (PostgreSQL refuses NUL).
    nul_reader = {"service": True, "readers": [{"name": "R\x0000", "card": True}]}
    with pytest.raises(RefusedError) as control:
        await bot.send(agent_id, key, 2, {"status": nul_reader})
    assert control.value.status == 400 and "status.readers.0.name" in control.value.detail
    async with httpx.AsyncClient(base_url=bot.url) as http:
        named = await http.post(PATH_PAIR, json={"code": "ABCD-EFGH", "public_key": "k" * 44, "name": "PC\x00"})
        assert named.status_code == 400 and named.json()["detail"].startswith("name:")


@pytest.mark.parametrize("path", [PATH_PAIR, PATH_EVENTS])
async def test_a_chunked_body_is_refused_while_it_is_read_not_after(bot, path):
    before = resident_kb()
    sent, answer = await asyncio.to_thread(send_chunked, bot.url, path, 200 * 1024 * 1024)
    grown = (resident_kb() - before) / 1024
    print(f"{path}: {sent / 1e6:.1f} MB sent of 209.7 MB before the server stopped reading; resident +{grown:.1f} MB")
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert sent < 32 * 1024 * 1024, "the server read on long after the limit"
    assert grown < 32
    async with httpx.AsyncClient(base_url=bot.url) as http:  # and it still answers
        assert (await http.post(PATH_PAIR, content=b"x" * 70_000)).status_code == 413
        assert (await http.post(PATH_PAIR, content=b"{}")).status_code == 400


async def test_a_content_length_that_is_no_number_is_a_bad_request(bot):
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(bot.url)

    def post() -> bytes:
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            sock.sendall(f"POST {PATH_PAIR} HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{{}}".encode())
            return sock.recv(500)

    answer = await asyncio.to_thread(post)
    assert answer.startswith(b"HTTP/1.1 400"), answer


async def test_plain_http_is_refused_from_another_machine(bot):
    async def healthy():
        return True, {}

    asgi = create_app(metrics=Metrics(), health=healthy, cardlink=bot.link)
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.example.com") as http:
        refused = await http.post(PATH_PAIR, content=b"{}")
    assert refused.status_code == 403 and refused.json()["error"] == "https_required"
    with pytest.raises(ValueError, match=r"use https://bot\.example\.com"):
        check_server("http://bot.example.com")
    assert check_server("http://localhost:8080/") == "http://localhost:8080"


async def test_an_agent_gone_silent_is_offline_once_and_told_only_at_a_card_step(bot):
    agent_id, key = await bot.paired_agent()
    await bot.send(agent_id, key, 1, {"status": status(True), "changes": []})
    bot.clock.offset = SILENCE + timedelta(seconds=1)
    told = len(bot.told)
    assert await bot.link.check_silence() == 1
    assert await bot.link.check_silence() == 0, "marked offline once"
    assert len(bot.told) == told, "not at a card step: nothing to say"
    assert "目前离线" in await bot.say("我的卡插好了吗")

    bot.clock.offset = timedelta()
    await bot.say("我要办理跨境电商入网")
    await bot.say("陕西")
    await bot.say("先不填")
    await bot.say("有卡")
    await bot.send(agent_id, key, 2, {"status": status(True), "changes": []})
    bot.clock.offset = SILENCE + timedelta(seconds=1)
    assert await bot.link.check_silence() == 1
    assert "已有 2 分钟没有上报" in bot.told[-1][2]
    bot.clock.offset = timedelta()
    await bot.send(agent_id, key, 3, {"status": status(True), "changes": []})
    assert bot.told[-1][2] == "卡片助手（电脑 财务室电脑）又连上了。"


async def test_the_http_servers_log_lines_are_masked_like_ours(db_url, lexical, capsys):
    """uvicorn writes through our formatter, not handlers of its own (which would not mask)."""
    import logging

    from bot.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging(logging.WARNING)
    store = Store(db_url)
    try:
        async with agent_endpoint(CardLink(Assistant(store, lexical), Bot.deliver), "127.0.0.1", 0) as url:
            assert url is not None
            logging.getLogger("uvicorn.error").error("request from 13800138000 failed")
    finally:
        store.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "request from 138****8000 failed" in err and "13800138000" not in err
