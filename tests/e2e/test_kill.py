"""Crash safety: ``portpal run`` (webhook mode, on the run's database) is killed with SIGKILL 20 times at
random points while users walk through the procedure, fill in a form and talk to the help
desk; each time it is restarted and Telegram's redelivery is played (an update not
answered 200 is posted again). Afterwards every update was applied exactly once, every
conversation ends in the state an uninterrupted run gives, and every reply of that run
reached the user at least once (a reply sent just before a kill may come twice: the
outbox sends at least once). Replies a killed process had leased for sending go out when
the lease ends (60 s), so the test waits that long for the last of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from bot.assistant import Assistant
from bot.core.events import Command, TextMessage
from bot.core.handoff import Desk, ServiceHours
from bot.core.state import ConversationState
from bot.store import Store
from forms.masking import mask_text
from nlu.lexical import default_lexical
from tests.auxil import database
from tests.auxil.botapi import BotApiDouble
from tests.e2e.test_telegram_run import bot_env

pytestmark = pytest.mark.e2e

PORTPAL = Path(sys.executable).with_name("portpal")
STAFF = -1009988776655
KILLS = 20
SCRIPTS: dict[int, list[str]] = {
    # A walkthrough with branch answers typed, progress asked, steps done.
    501: ["我要办理陕西的跨境电商入网", "西安丝路贸易有限公司", "有卡", "下一步", "下一步", "线下", "我做到哪了",
          "下一步", "电商企业", "下一步"],
    # Form filling: fields one by one, a wrong code corrected, an option by number.
    502: ["帮我生成授权委托书", "西安丝路贸易有限公司", "91110000600037340L", "91110000600037341L", "张三", "1",
          "李四", "110105194912310029", "13800138000", "改一下法定代表人", "王五"],
    # The help desk: a question, a handoff, messages relayed, cancelled, questions again.
    503: ["宝鸡哪里可以办卡", "/human", "我的卡读不出来", "还在吗", "/cancel", "珠海海关数据分中心电话"],
    # Another walkthrough, Zhuhai, with the agent-company branch skipping a step.
    504: ["开始办理珠海的入网", "珠海横琴某某公司", "已有海关编码", "代理企业", "下一步", "我做到哪了"],
}  # fmt: skip


def _plain(value: Any) -> Any:
    """The state without its times (a rerun happens at other times)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, datetime)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def comparable(state: ConversationState) -> Any:
    data = state.model_dump()
    data.pop("reminders", None)  # due times follow the clock
    return _plain(data)


async def reference(tmp_path: Path) -> tuple[dict[int, Any], dict[int, list[str]]]:
    """The scripts without kills, in process: final states and the replies each user gets."""
    store = Store(database.url_for(tmp_path / "reference"))
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))
    assistant = Assistant(
        store, default_lexical(), desk=desk, staff_route=("telegram", str(STAFF)), outbox_channels={"telegram"}
    )
    states, replies = {}, {}
    try:
        for chat, lines in SCRIPTS.items():
            replies[chat] = []
            for line in lines:
                event = Command.parse(line) if line.startswith("/") else TextMessage(line)
                outcome = await assistant.handle("telegram", str(chat), event)
                replies[chat] += [r.text for r in outcome.replies if r.to == "user"]
            states[chat] = comparable(outcome.state)
    finally:
        store.close()
    return states, replies


class Bot:
    """``portpal run`` that can be killed and started again on the same port and database."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.url = f"http://127.0.0.1:{env['PORTPAL_HTTP_PORT']}"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(PORTPAL), "run", env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        self.starts += 1
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                assert self.proc.returncode is None, self.log.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        pytest.fail(f"portpal run did not become healthy: {self.log.read_text()[-3000:]}")

    async def kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)
        return self.proc.returncode or 0


async def _outbox_drained(url: str, timeout: float) -> None:
    store = Store(url)
    try:
        deadline = time.monotonic() + timeout
        while store.outbox_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
    finally:
        store.close()


async def test_twenty_kills_lose_nothing_and_apply_nothing_twice(tmp_path):
    expected_states, expected_replies = await reference(tmp_path)
    rng = random.Random(int(os.environ.get("PORTPAL_KILL_SEED", "20261123")))
    async with BotApiDouble() as api:
        env = bot_env(
            api, tmp_path / "data", PORTPAL_PUBLIC_URL="https://bot.example.test", STAFF_CHAT_ID=str(STAFF),
            PORTPAL_SERVICE_HOURS="always", PORTPAL_USER_RATE="0",
        )  # fmt: skip
        bot = Bot(env, tmp_path / "bot.log")
        await bot.start()
        headers = {SECRET_HEADER: webhook_secret(api.token)}
        # Updates in a mixed order (each user's in their order), as Telegram would send them.
        queues = {chat: [api.user_message(chat, line) for line in lines] for chat, lines in SCRIPTS.items()}
        api.take_updates()
        order = [chat for chat, lines in SCRIPTS.items() for _ in lines]
        rng.shuffle(order)
        kill_at = set(rng.sample(range(len(order)), KILLS))
        posts = redeliveries = 0
        async with httpx.AsyncClient(timeout=30) as http:

            async def post(update: dict[str, Any]) -> bool:
                try:
                    response = await http.post(bot.url + WEBHOOK_PATH, json=update, headers=headers)
                except httpx.HTTPError:
                    return False
                return response.status_code == 200

            for i, chat in enumerate(order):
                update = queues[chat].pop(0)
                first = True
                while True:  # Telegram's redelivery: until the bot answers 200
                    posts += 1
                    posting = asyncio.create_task(post(update))
                    if first and i in kill_at:
                        # Somewhere in the update's life: before, during or after its commit and send.
                        await asyncio.sleep(rng.uniform(0.0, 0.015))
                        await bot.kill()
                        ok = await posting
                        await bot.start()
                    else:
                        ok = await posting
                    first = False
                    if ok:
                        break
                    redeliveries += 1
            assert await bot.stop() == 0
        # A final start lets the outbox send what kills left unsent. A reply a killed process
        # had leased waits for the lease to end (60 s): another live replica may be sending it.
        await bot.start()
        for chat, replies in expected_replies.items():
            for text in replies:
                await api.wait_text(chat, text, timeout=90)
        # A reply a killed process sent but did not mark sent is already in the chat: the new
        # process sends it again (at least once) when its lease ends. Wait for that too.
        await _outbox_drained(database.url_for(tmp_path / "data"), timeout=150)
        assert await bot.stop() == 0
        delivered = {chat: api.texts(chat) for chat in SCRIPTS}

    store = Store(database.url_for(tmp_path / "data"))
    try:
        for chat, lines in SCRIPTS.items():
            inbound = [m.text for m in store.transcript("telegram", str(chat)) if m.direction == "in"]
            assert inbound == [mask_text(line) for line in lines], f"chat {chat}: each update applied once, in order"
            state = store.load("telegram", str(chat)).state
            assert comparable(state) == expected_states[chat], f"chat {chat} ends as without kills"
            sent, wanted = Counter(delivered[chat]), Counter(expected_replies[chat])
            assert not wanted - sent, f"chat {chat}: replies lost {list((wanted - sent).elements())}"
            assert set(sent) <= set(wanted), f"chat {chat}: replies no uninterrupted run sends"
        assert store.outbox_size() == 0
    finally:
        store.close()
    doubled = sum((Counter(delivered[c]) - Counter(expected_replies[c])).total() for c in SCRIPTS)
    print(
        f"\n{KILLS} kills, {bot.starts} starts, {posts} posts ({redeliveries} redelivered), {doubled} replies sent twice"
    )
    assert bot.starts == KILLS + 2
