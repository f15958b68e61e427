"""``portpal-agent run``'s loop against the real PC/SC stack and a real bot endpoint:
changes reach the conversation, and changes made while the bot is down are kept on disk,
survive a restart of the agent, and arrive as a summary with the state now."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.assistant import Assistant
from bot.cardlink import CardLink
from bot.core.events import Command
from bot.serving import agent_endpoint
from bot.store import Store
from cardagent.client import pair
from cardagent.files import AgentFiles, Registration
from cardagent.runner import Runner
from tests.auxil.pcsc import READER

CHAT = ("console", "runner")


class Bot:
    def __init__(self, store: Store, lexical) -> None:
        self.assistant = Assistant(store, lexical)
        self.offset = timedelta()
        self.told: list[str] = []
        self.link = CardLink(self.assistant, self.deliver, clock=lambda: datetime.now(UTC) + self.offset)

    async def deliver(self, channel, chat_id, outcome) -> None:
        self.told.extend(r.text for r in outcome.replies)

    async def told_within(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for said in self.told:
                if text in said:
                    return said
            await asyncio.sleep(0.05)
        raise AssertionError(f"not told within {timeout} s: {text!r}; told: {self.told}")


async def paired_files(bot: Bot, url: str, tmp_path) -> AgentFiles:
    bot.assistant.agent_url = url
    shown = (await bot.assistant.handle(*CHAT, Command("pair"))).replies[0].text
    code = shown.split("portpal-agent pair ", 1)[1].split()[0]
    key = Ed25519PrivateKey.generate()
    answer = await asyncio.to_thread(pair, url, code, key, "测试电脑")
    files = AgentFiles(tmp_path / "agent")
    files.save(Registration(url, answer["agent_id"], answer["name"]), key)
    return files


def start(files: AgentFiles, heartbeat: float = 30.0) -> tuple[Runner, threading.Thread]:
    loaded = files.load()
    assert loaded is not None
    runner = Runner(files, *loaded, heartbeat=heartbeat)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return runner, thread


def stop(runner: Runner, thread: threading.Thread) -> None:
    runner.stop()
    # The runner finishes the report it is sending first; on a loaded machine that can take
    # more than a few seconds.
    thread.join(30)
    assert not thread.is_alive()


@pytest.fixture
def bot(db_url, lexical):
    store = Store(db_url)
    yield Bot(store, lexical)
    store.close()


async def test_changes_reach_the_conversation_and_the_files_are_private(bot, running_pcscd, tmp_path):
    async with agent_endpoint(bot.link, "127.0.0.1", 0) as url:
        assert url is not None
        files = await paired_files(bot, url, tmp_path)
        for path in (files.key_file, files.registration_file):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(files.home.stat().st_mode) == 0o700
        runner, thread = start(files)
        try:
            card = running_pcscd.card()
            await asyncio.sleep(1.0)  # the first report (state now, no news) goes first
            card.insert()
            await bot.told_within(f"检测到读卡器 {READER} 中已插入卡片。")
            card.remove()
            await bot.told_within(f"读卡器 {READER} 中的卡片已取出。")
        finally:
            stop(runner, thread)
        assert card.apdus == [], "the agent only watches: it never talks to the card"
        assert json.loads(files.queue_file.read_text())["pending"] == []


async def test_changes_while_the_bot_is_down_are_kept_across_an_agent_restart(bot, running_pcscd, tmp_path):
    async with agent_endpoint(bot.link, "127.0.0.1", 0) as url:
        assert url is not None
        files = await paired_files(bot, url, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    # The bot is down: the agent keeps what it sees.
    runner, thread = start(files, heartbeat=1.0)
    card = running_pcscd.card()
    try:
        await asyncio.sleep(0.5)
        card.insert()
        await asyncio.sleep(1.0)
        card.remove()
        await asyncio.sleep(1.0)
        card.insert()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            queue = json.loads(files.queue_file.read_text()) if files.queue_file.exists() else {}
            kept = queue.get("batch", []) + queue.get("pending", [])
            if [c["kind"] for c in kept] == ["card_inserted", "card_removed", "card_inserted"]:
                break
            await asyncio.sleep(0.1)
        assert [c["kind"] for c in kept] == ["card_inserted", "card_removed", "card_inserted"]
    finally:
        stop(runner, thread)
    # A new agent process picks the kept changes up and, the bot being back (its clock
    # past the changes' freshness), they come as a summary with the state now.
    bot.offset = timedelta(seconds=90)
    told = len(bot.told)
    async with agent_endpoint(bot.link, "127.0.0.1", port):
        runner, thread = start(files)
        try:
            said = await bot.told_within("连不上机器人期间发生了 3 个变化")
        finally:
            stop(runner, thread)
            card.remove()
    assert said.endswith(f"读卡器 {READER} 中已插入卡片。\n读卡器 PortPal Virtual Reader 00 01 中没有卡片。")
    assert len(bot.told) == told + 1, "told once, not change by change"
    queue = json.loads(files.queue_file.read_text())
    assert queue["batch"] == [] and queue["pending"] == []
