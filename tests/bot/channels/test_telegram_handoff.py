"""Handoff through Telegram: the real PTB application against the Bot API double, with a
staff supergroup whose forum topics hold one handoff each."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from tests.auxil.botapi import BotApiDouble
from tests.auxil.telegram import TgUser, handled, running_bot, wait_handled

CHAT = 4242
STAFF = -1001234567890
AGENT = 9001  # a help-desk member's Telegram user id


async def wait_topic(api: BotApiDouble, count: int, timeout: float = 10) -> tuple[int, list[str]]:
    """The staff group's one topic and its texts, once ``count`` have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        topics = list(api.topics[STAFF])
        texts = api.topic_texts(STAFF, topics[0]) if topics else []
        if len(texts) >= count:
            return topics[0], texts
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} messages not in the staff topic; got {texts}")
        await asyncio.sleep(0.01)


async def staff_says(api: BotApiDouble, bot, thread: int, text: str) -> None:
    before = handled(bot)
    api.user_message(STAFF, text, user_id=AGENT, thread_id=thread, chat_type="supergroup", first_name="王芳")
    await wait_handled(bot, before + 1)


async def test_user_to_topic_staff_reply_to_user_and_close_hands_back(tmp_path):
    settings = {"staff_chat_id": STAFF, "portpal_service_hours": "always"}
    async with BotApiDouble() as api, running_bot(api, tmp_path, **settings) as bot:
        user = TgUser(api, bot, CHAT)
        assert "转接人工客服" in await user.say("/human")
        thread, texts = await wait_topic(api, 1)
        assert api.topics[STAFF][thread] == f"#1 {CHAT}"
        assert "人工服务请求 #1" in texts[0] and "用户要求转人工" in texts[0]

        assert await user.say("我的法人卡丢了怎么办") == ""  # the bot keeps quiet
        _, texts = await wait_topic(api, 2)
        assert texts[1] == "👤 我的法人卡丢了怎么办"

        # /take from a private chat is that user's command, not a staff action.
        other = TgUser(api, bot, 5555)
        assert "不认识的命令" in await other.say("/take")
        [record] = bot.store.handoffs_since(datetime.now(UTC) - timedelta(hours=1))
        assert (record.status, record.staff_name) == ("waiting", None)

        await staff_says(api, bot, thread, "/take")
        await api.wait_text(CHAT, "客服已接入")
        _, texts = await wait_topic(api, 3)
        assert texts[2] == "✅ 王芳 已接手。"
        await staff_says(api, bot, thread, "请到原办卡网点挂失补办。")
        await api.wait_text(CHAT, "客服：请到原办卡网点挂失补办。")

        # A message in the group's general topic belongs to no handoff.
        before = len(api.texts(CHAT))
        api.user_message(STAFF, "大家好", user_id=AGENT, chat_type="supergroup")
        await staff_says(api, bot, thread, "/close 已告知补办流程")
        await api.wait_text(CHAT, "人工服务已结束")
        assert [t for t in api.texts(CHAT)[before:] if "大家好" in t] == []
        answer = await user.say("宝鸡哪里可以办卡")
        assert "宝鸡" in answer and "来源" in answer
        _, texts = await wait_topic(api, 4)
        assert "已结束（已告知补办流程）" in texts[3]
