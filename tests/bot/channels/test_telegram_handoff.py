"""Handoff through Telegram: the real PTB application against the Bot API double, with a
staff supergroup whose forum topics hold one handoff each."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.channels.telegram import merge_replies
from bot.core.replies import FileRef, Reply
from bot.logs import ContextFormatter
from bot.outbox import Ticket
from tests.auxil.botapi import BotApiDouble
from tests.auxil.telegram import TgUser, handled, running_bot, wait_handled

CHAT = 4242
STAFF = -1001234567890
AGENT = 9001  # a help-desk member's Telegram user id
PORTPAL = Path(sys.executable).with_name("portpal")


async def wait_topic(api: BotApiDouble, count: int, timeout: float = 30) -> tuple[int, list[str]]:
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


async def test_a_pending_handoff_and_its_timers_survive_a_restart(tmp_path):
    """The bot stops while a user waits for staff and comes back 20 minutes later: the
    nudge and the give-up fire, in the same topic, and the staff's answer still reaches the
    user (the topic's conversation is found in the database, not in memory)."""
    settings = {
        "staff_chat_id": STAFF, "portpal_service_hours": "always",
        "portpal_handoff_nudge_minutes": 5, "portpal_handoff_timeout_minutes": 15,
    }  # fmt: skip
    async with BotApiDouble() as api:
        async with running_bot(api, tmp_path, **settings) as bot:
            user = TgUser(api, bot, CHAT)
            assert "转接人工客服" in await user.say("/human")
            assert await user.say("卡丢了，怎么补办？") == ""
            thread, texts = await wait_topic(api, 2)
        assert api.texts(CHAT)[-1].startswith("已为您转接人工客服")

        later = datetime.now(UTC) + timedelta(minutes=20)
        async with running_bot(api, tmp_path, clock=lambda: later, **settings) as bot:
            _, texts = await wait_topic(api, 4)
            assert texts[2:] == ["⏰ 用户已等待 5 分钟，尚无人接手。", "⌛ 15 分钟内无人回复：用户已收到热线，可留言。"]
            gave_up = await api.wait_text(CHAT, "客服暂时都在忙")
            assert "029-" in gave_up or "0756-" in gave_up or "热线" in gave_up
            assert list(api.topics[STAFF]) == [thread]  # no second topic

            user = TgUser(api, bot, CHAT)
            assert await user.say("那我留言：请回电") == ""
            _, texts = await wait_topic(api, 5)
            assert texts[4] == "👤 那我留言：请回电"
            await staff_says(api, bot, thread, "您好，已收到留言，补办需带营业执照。")
            await api.wait_text(CHAT, "客服：您好，已收到留言，补办需带营业执照。")
            [record] = bot.store.handoffs_since(datetime.now(UTC) - timedelta(hours=1))
            assert record.status == "held" and record.staff_name == "王芳"


async def test_a_burst_of_user_messages_reaches_the_topic_complete_in_order_within_the_group_limit(tmp_path):
    """100 messages sent as fast as a user can paste them: Telegram takes about 20 messages a
    minute in a group (the double refuses more with 429), so the relay merges consecutive
    lines into few messages instead of queueing 100 sends for five minutes."""
    settings = {"staff_chat_id": STAFF, "portpal_service_hours": "always"}
    async with BotApiDouble() as api, running_bot(api, tmp_path, **settings) as bot:
        user = TgUser(api, bot, CHAT)
        await user.say("/human")
        await wait_topic(api, 1)
        sent = [f"第{i}条：" + "营业执照和法人身份证复印件已备好" * (1 + i % 7) for i in range(100)]
        before = handled(bot)
        for text in sent:
            api.user_message(CHAT, text)
        await wait_handled(bot, before + 100, timeout=60)
        relayed: list[str] = []
        deadline = time.monotonic() + 60
        while len(relayed) < 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            topic = api.topic_texts(STAFF, next(iter(api.topics[STAFF])))
            relayed = [line for text in topic[1:] for line in text.split("\n")]
        assert relayed == [f"👤 {text}" for text in sent]
        assert api.floods == []  # never above the group's limit
        group_sends = len(api.calls_of("sendMessage", STAFF))
        assert 2 < group_sends <= 20  # the card, then the lines merged into messages of ≤ 4096
        assert [t for t in api.texts(CHAT) if t] == [api.texts(CHAT)[0]]  # the bot kept quiet


def test_only_plain_staff_lines_of_one_handoff_are_merged_and_never_past_4096():
    one, other = Ticket("telegram", "1", 1, "甲"), Ticket("telegram", "2", 1, "乙")
    line = Reply("👤 你好", to="staff", meta={"ticket": one})
    assert merge_replies(line, line) == Reply("👤 你好\n👤 你好", to="staff", meta={"ticket": one})
    assert merge_replies(line, Reply("👤 你好", to="staff", meta={"ticket": other})) is None
    assert (
        merge_replies(line, Reply("👤 [photo]", to="staff", meta={"ticket": one}, file=FileRef("photo", "p1"))) is None
    )
    assert merge_replies(Reply("你好"), Reply("再见")) is None  # a user's chat: each reply its own message
    long = Reply("👤 " + "😀" * 2000, to="staff", meta={"ticket": one})  # 4003 UTF-16 units
    assert merge_replies(long, line) is not None
    assert merge_replies(long, Reply("👤 " + "好" * 100, to="staff", meta={"ticket": one})) is None


async def test_no_full_id_number_or_phone_in_the_card_the_logs_or_the_export_unless_revealed(tmp_path):
    """A user with a filled profile asks for a person and types their numbers; the staff note
    one and reveal the ID number. Only the reveal shows a full number, in the topic; the log
    (everything, debug included: PTB logs each request's parameters) and the CSV do not."""
    lead_id, agent_id, agent_mobile = "11010519491231002X", "110101199003074477", "13700137000"
    log_lines = io.StringIO()
    handler = logging.StreamHandler(log_lines)
    handler.setFormatter(ContextFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    settings = {"staff_chat_id": STAFF, "portpal_service_hours": "always"}
    try:
        async with BotApiDouble() as api, running_bot(api, tmp_path, **settings) as bot:
            user = TgUser(api, bot, CHAT)
            await user.say("帮我生成企业法人授权书")
            await user.say(
                "单位名称：陕西丝路优选跨境电子商务有限公司，统一社会信用代码：91110000600037341L，"
                f"法定代表人：张三，法人身份证号：{lead_id}"
            )
            await user.say(f"经办人姓名：李四，经办人身份证号：{agent_id}，经办人手机：{agent_mobile}")
            await user.say("/human")
            await user.say(f"我的手机是 {agent_mobile}，身份证 {agent_id}")
            thread, texts = await wait_topic(api, 2)
            await staff_says(api, bot, thread, f"/note 回电 {agent_mobile}")
            await staff_says(api, bot, thread, "/reveal 法定代表人身份证号")
            _, texts = await wait_topic(api, 4)
            card, relayed, revealed = texts[0], texts[1], texts[3]
            assert "110***********002X" in card and "137****7000" in relayed and "110***********4477" in relayed
            assert lead_id in revealed  # what /reveal is for
            await staff_says(api, bot, thread, "/close 已回电")
            await api.wait_text(CHAT, "人工服务已结束")
            database = bot.settings.resolved_database_url()
        topic = "\n".join(api.topic_texts(STAFF, thread))
        assert [number for number in (agent_id, agent_mobile) if number in topic] == []
    finally:
        root.removeHandler(handler)
        root.setLevel(level)

    logged = log_lines.getvalue()
    assert "Calling Bot API endpoint `sendMessage`" in logged  # the debug lines were there to leak
    assert "staff revealed a personal field" in logged and "legal_rep_id" in logged
    assert "110***********002X" in logged and "137****7000" in logged
    assert [number for number in (lead_id, agent_id, agent_mobile) if number in logged] == []

    env = {**os.environ, "DATABASE_URL": database}
    exported = subprocess.run(
        [str(PORTPAL), "handoff", "export", "--since", "2000-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert exported.returncode == 0, exported.stderr
    [row] = list(csv.DictReader(exported.stdout.splitlines()))
    assert row["notes"] == "王芳: 回电 137****7000" and row["resolution"] == "已回电"
    assert [number for number in (lead_id, agent_id, agent_mobile) if number in exported.stdout] == []
