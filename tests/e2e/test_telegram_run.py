"""``portpal run`` with a Telegram token, as real processes against the Bot API double:
start-up errors, polling as a new user would try it, and two webhook replicas sharing one
PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from bot.store import Conversation, Store
from tests.auxil import database
from tests.auxil.botapi import BotApiDouble

pytestmark = pytest.mark.e2e

PORTPAL = Path(sys.executable).with_name("portpal")
CHAT = 777


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(api: BotApiDouble, data_dir: Path, **extra: str) -> dict[str, str]:
    env = database.env_for(data_dir)
    env.update(
        TELEGRAM_BOT_TOKEN=api.token,
        TELEGRAM_API_BASE_URL=api.base_url,
        PORTPAL_NLU="lexical",
        PORTPAL_HTTP_PORT=str(free_port()),
        PORTPAL_TELEGRAM_RATE="0",
    )
    env.update(extra)
    return env


async def run_to_end(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(PORTPAL), "run", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, err.decode()


@contextlib.asynccontextmanager
async def bot_process(env: dict[str, str], log: Path) -> AsyncIterator[str]:
    """A running ``portpal run``; yields its HTTP base URL once /healthz answers."""
    url = f"http://127.0.0.1:{env['PORTPAL_HTTP_PORT']}"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(PORTPAL), "run", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(600):
                    if proc.returncode is not None:
                        pytest.fail(f"portpal run exited with {proc.returncode}: {log.read_text()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(url + "/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"portpal run did not become healthy: {log.read_text()}")
            yield url
        finally:
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0, log.read_text()  # SIGTERM is a clean stop


async def test_bad_token_and_unreachable_api_exit_with_one_clear_error(tmp_path):
    async with BotApiDouble() as api:
        code, err = await run_to_end(bot_env(api, tmp_path, TELEGRAM_BOT_TOKEN="999:WRONG"))
        assert code == 2
        assert "PortPal cannot start: Telegram rejected TELEGRAM_BOT_TOKEN" in err
        assert "WRONG" not in err and "Traceback" not in err
        dead = api.base_url.replace(str(api.port), str(free_port()))
        code, err = await run_to_end(bot_env(api, tmp_path, TELEGRAM_API_BASE_URL=dead))
        assert code == 3
        assert "cannot reach the Telegram Bot API" in err and "Traceback" not in err


async def test_polling_as_a_new_user_tries_it(tmp_path):
    """TELEGRAM_BOT_TOKEN=... TELEGRAM_API_BASE_URL=... portpal run: a question, a walkthrough."""
    async with BotApiDouble() as api, bot_process(bot_env(api, tmp_path), tmp_path / "bot.log"):
        api.user_message(CHAT, "宝鸡哪里可以办卡")
        (answer,) = [m["text"] for m in await api.wait_delivered(CHAT, 1, timeout=30)]
        assert "0917-3276018" in answer and "来源：陕西手册 2.3.3" in answer
        api.user_message(CHAT, "我要办理陕西的跨境电商入网")
        step = await api.wait_text(CHAT, "第 1/5 步")
        assert "单一窗口" in step
        assert any("「我的企业」" in t for t in api.texts(CHAT))  # the name is asked for in passing
        assert api.webhook is None and api.calls_of("deleteWebhook")  # polling mode


async def test_two_webhook_replicas_share_postgresql_without_losing_or_doubling(tmp_path, postgres_server):
    db = database.fresh_postgres_database(postgres_server)
    async with BotApiDouble() as api:
        env_a = bot_env(api, tmp_path / "a", DATABASE_URL=db, PORTPAL_PUBLIC_URL="https://bot.example.test")
        env_b = bot_env(api, tmp_path / "b", DATABASE_URL=db, PORTPAL_PUBLIC_URL="https://bot.example.test")
        headers = {SECRET_HEADER: webhook_secret(api.token)}
        async with (
            bot_process(env_a, tmp_path / "a.log") as url_a,
            bot_process(env_b, tmp_path / "b.log") as url_b,
            httpx.AsyncClient(timeout=60) as http,
        ):
            replicas = [url_a + WEBHOOK_PATH, url_b + WEBHOOK_PATH]

            # A walkthrough whose updates alternate between the replicas, one at a time as
            # Telegram delivers a chat's updates.
            async def post(update: dict, replica: int) -> None:
                response = await http.post(replicas[replica], json=update, headers=headers)
                assert response.status_code == 200, response.text

            await post(api.user_message(CHAT, "我要办理陕西的跨境电商入网"), 0)
            for turn, label in enumerate(["有卡", "完成，下一步", "完成，下一步"], start=1):
                message_id, keys = api.last_keyboard(CHAT)
                await post(api.button_press(CHAT, dict(keys)[label], message_id=message_id), turn % 2)
            assert "第 3/5 步" in "\n".join(api.texts(CHAT)[-2:])

            # A burst for one chat: every update goes to both replicas at once (a redelivery
            # racing the original), all of them concurrently.
            other = CHAT + 1
            questions = ["宝鸡哪里可以办卡", "珠海的热线是多少", "法人卡和操作员卡的区别", "单一窗口推荐用什么浏览器"]
            updates = [api.user_message(other, f"{questions[i % 4]}（{i}）") for i in range(24)]
            api.take_updates()
            await asyncio.gather(*(post(u, r) for u in updates for r in (0, 1)))

        store = Store(db)
        inbound = [m.text for m in store.transcript("telegram", str(other)) if m.direction == "in"]
        outbound = [m.text for m in store.transcript("telegram", str(other)) if m.direction == "out"]
        assert sorted(inbound) == sorted(u["message"]["text"] for u in updates)  # each applied once
        assert len(api.texts(other)) == len(outbound)  # each reply sent once, none lost
        with store.session() as s:
            conv = s.exec(select(Conversation).where(Conversation.chat_id == str(other))).one()
        assert conv.version == len(updates)
        progress = store.load("telegram", str(CHAT)).state.progress()
        assert progress is not None and progress.done == ["sw_register", "customs_registration"]
        assert progress.current == "card"
        assert store.outbox_size() == 0
        store.close()
