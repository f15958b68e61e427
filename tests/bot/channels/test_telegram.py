"""The Telegram channel end to end: the real python-telegram-bot Application, the bot's
uvicorn server and outbox, against the Bot API double on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime, timedelta

import docx
import httpx
import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from bot.assistant import Assistant
from bot.channels.telegram import COMMANDS, MAX_TEXT, split_text, utf16_len
from bot.core.replies import Button, Reply
from bot.runtime import StartupError
from bot.store import Conversation, OutboxRecord, Store
from nlu.lexical import default_lexical
from tests.auxil import database
from tests.auxil.botapi import BotApiDouble, Fault
from tests.auxil.chat import zhuhai_ticket_submitted
from tests.auxil.rawhttp import send_chunked
from tests.auxil.telegram import TgUser, handled, running_bot, wait_handled

CHAT = 4242


# ---------------------------------------------------------------------- pure helpers
def test_split_text_keeps_lines_and_counts_utf16():
    lines = [f"{i:04d} 建行宝鸡分行营业部（宝鸡渭滨区）🙂 <b>x</b> *y* _z_" for i in range(400)]
    text = "\n".join(lines)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(utf16_len(p) <= MAX_TEXT for p in parts)
    assert "\n".join(parts) == text  # split at line boundaries only: nothing lost or altered
    # One line longer than the limit is cut between characters, never inside an emoji.
    long_line = "🙂" * 3000
    parts = split_text(long_line)
    assert "".join(parts) == long_line and all(utf16_len(p) <= MAX_TEXT for p in parts)
    assert split_text("短") == ["短"]


# ---------------------------------------------------------------------- conversations
async def test_start_question_and_answer_with_source(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        assert [c["command"] for c in api.commands] == [name for name, _ in COMMANDS]
        user = TgUser(api, bot, CHAT)
        welcome = await user.say("/start")
        assert "口岸助手" in welcome
        assert user.buttons() == ["陕西", "珠海", "开始办理入网"]
        answer = await user.say("宝鸡哪里可以办卡")
        assert "陕西省宝鸡市渭滨区红旗路36号" in answer and "0917-3276018" in answer
        assert "来源：陕西手册 2.3.3" in answer
        text = bot.metrics.render().decode()
        assert 'portpal_updates_total{kind="Command"} 1.0' in text
        assert 'portpal_nlu_engine_total{engine="lexical"} 1.0' in text


async def test_questions_as_users_type_them_and_a_did_you_mean_tap(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        # Traditional characters and a homophone typo, answered from the manual.
        answer = await user.say("請問寶雞那邊辦電子口暗卡去哪")
        assert "陕西省宝鸡市渭滨区红旗路36号" in answer and "来源：陕西手册 2.3.3" in answer
        # A place no manual covers: said so, a human offered.
        assert "只有陕西和珠海" in await user.say("我们在苏州 电子口岸卡怎么办")
        assert "转人工" in user.buttons()
        # A near miss: "did you mean" as inline buttons; one tap answers and the keyboard goes.
        text = await user.say("批下来之后账号和证书会发到哪里呢")
        assert "您是不是想问" in text
        message_id, keys = api.last_keyboard(CHAT)
        assert all(data.startswith("kb:") for label, data in keys if label != "转人工")
        first = next(label for label, data in keys if data.startswith("kb:"))
        tapped = await user.press(first)
        assert "来源：" in tapped and (CHAT, message_id) in api.markups_removed


async def test_button_runs_the_walkthrough_and_a_keyboard_works_once(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        opened = await user.say("我要办理陕西的跨境电商入网")
        assert "第 1/5 步" in opened and "「我的企业」" in opened  # the name can come any time
        message_id, keys = api.last_keyboard(CHAT)
        card = await user.press("有卡")
        assert (CHAT, message_id) in api.markups_removed  # the pressed keyboard is gone
        assert len(api.calls_of("answerCallbackQuery")) == 1
        assert "第 2/5 步" in card + await user.press("完成，下一步")
        # A second press of a consumed keyboard (already on its way) changes nothing.
        seen = len(api.delivered[CHAT])
        before = handled(bot)
        api.button_press(CHAT, dict(keys)["有卡"], message_id=message_id)
        await wait_handled(bot, before + 1)
        assert len(api.delivered[CHAT]) == seen
        assert len(api.calls_of("answerCallbackQuery")) == 3  # the spinner still stops
        assert "第 3/5 步" in await user.say("/walkthrough") + await user.press("完成，下一步")


async def test_long_button_payloads_are_stored_and_restored(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        long = "region:shaanxi" + "#" * 80
        markup = bot.channel.keyboard([Button("陕西", long)])
        assert markup is not None
        data = markup.inline_keyboard[0][0].callback_data
        assert isinstance(data, str) and data.startswith("k:") and len(data.encode()) <= 64
        assert bot.store.expand(data[2:]) == long
        # A stored payload pressed in chat reaches the core as the original payload.
        key = bot.store.shorten("region:zhuhai")
        user = TgUser(api, bot, CHAT)
        await user.say("/start")
        message_id, _ = api.last_keyboard(CHAT)
        before = handled(bot)
        api.button_press(CHAT, "k:" + key, message_id=message_id)
        await wait_handled(bot, before + 1)
        assert "珠海" in api.texts(CHAT)[-1]


async def test_form_completion_sends_a_docx(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        assert "请输入单位名称" in await user.say("帮我生成企业法人授权书")
        await user.say(
            "单位名称：陕西丝路优选跨境电子商务有限公司，统一社会信用代码：91110000600037341L，"
            "法定代表人：张三，法人身份证号：11010519491231002X"
        )
        await user.say("经办人姓名：李四，经办人身份证号：110101199003074477，经办人手机：13700137000")
        summary = await user.press("跳过")
        assert "生成文件" in user.buttons(), summary
        await user.press("生成文件")
        (call,) = api.calls_of("sendDocument", CHAT)
        name, content = call.files["document"]
        assert name == "陕西丝路优选跨境电子商务有限公司企业法人授权书.docx"
        assert "企业法人授权书" in call.params["caption"]
        document = docx.Document(io.BytesIO(content))
        cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
        assert "陕西丝路优选跨境电子商务有限公司" in cells and "李四" in cells


async def test_files_and_photos_from_the_user_are_acknowledged(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        reply = await user._after(lambda: api.user_document(CHAT, "营业执照.pdf", caption="我的执照"))
        assert "已收到“营业执照.pdf”" in reply[0]["text"]
        assert "转人工" in user.buttons()
        reply = await user._after(lambda: api.user_photo(CHAT))
        assert "已收到“图片”" in reply[0]["text"]
        transcript = [m.text for m in bot.store.transcript("telegram", str(CHAT)) if m.direction == "in"]
        assert transcript == ["[document] 营业执照.pdf 我的执照", "[photo]"]


async def test_long_texts_are_split_and_sent_verbatim(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        text = "\n".join(f"第{i}行 <b>不是标签</b> *星号* _下划线_ [链接](http://x) & 🙂" for i in range(300))
        await bot.channel.send(str(CHAT), Reply(text, (Button("我能问什么", "help"),)))
        parts = api.texts(CHAT)
        assert len(parts) == 4 and utf16_len(text) > 3 * MAX_TEXT
        assert "\n".join(parts) == text
        calls = api.calls_of("sendMessage", CHAT)
        assert all("parse_mode" not in c.params for c in calls)
        # The keyboard goes with the last part only.
        assert [bool(c.params.get("reply_markup")) for c in calls] == [False, False, False, True]


# ---------------------------------------------------------------------- faults
async def test_429_is_retried_once_after_retry_after(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        api.fail("sendMessage", Fault("429", retry_after=1))
        user = TgUser(api, bot, CHAT)
        answer = await user.say("宝鸡哪里可以办卡")
        assert answer.count("0917-3276018") == 1
        first, second = api.calls_of("sendMessage", CHAT)
        assert first.params["text"] == second.params["text"]
        assert second.at - first.at >= 1.0
        assert len(api.texts(CHAT)) == 1  # delivered once


async def test_server_errors_are_retried_in_order_without_duplicates(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        api.fail("sendMessage", Fault("500"), Fault("500"))
        await user.say("宝鸡哪里可以办卡")  # handled; its reply waits in the outbox
        await user.say("珠海的热线是多少")  # queued behind it, not sent ahead of it
        await api.wait_delivered(CHAT, 2, timeout=15)
        texts = api.texts(CHAT)
        assert len(texts) == 2
        assert "0917-3276018" in texts[0] and "0756" in texts[1]
        for _ in range(200):  # the row is marked sent just after the Bot API accepted it
            if bot.store.outbox_size() == 0:
                break
            await asyncio.sleep(0.01)
        assert bot.store.outbox_size() == 0


async def test_unessential_start_up_call_failing_is_skipped(tmp_path):
    async with BotApiDouble() as api:
        api.fail("setMyCommands", Fault("500"))
        async with running_bot(api, tmp_path) as bot:
            assert api.commands == []
            assert "0917-3276018" in await TgUser(api, bot, CHAT).say("宝鸡哪里可以办卡")


async def test_bad_token_and_unreachable_api_stop_start_up_with_a_clear_error(tmp_path):
    async with BotApiDouble() as api:
        with pytest.raises(StartupError, match="rejected TELEGRAM_BOT_TOKEN") as bad:
            async with running_bot(api, tmp_path, telegram_bot_token="999:WRONG"):
                pass
        assert bad.value.exit_code == 2
        assert "WRONG" not in str(bad.value)  # the token is a secret
        dead = api.base_url.replace(str(api.port), "9")  # nothing listens on port 9
        with pytest.raises(StartupError, match="cannot reach the Telegram Bot API") as down:
            async with running_bot(api, tmp_path, telegram_api_base_url=dead):
                pass
        assert down.value.exit_code == 3


# ---------------------------------------------------------------------- webhook
async def test_webhook_checks_the_secret_and_applies_an_update_once(tmp_path):
    async with (
        BotApiDouble() as api,
        running_bot(api, tmp_path, portpal_public_url="https://bot.example.test/") as bot,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot.port}") as http,
    ):
        assert api.webhook is not None
        assert api.webhook["url"] == "https://bot.example.test" + WEBHOOK_PATH
        secret = webhook_secret(api.token)
        assert api.webhook["secret_token"] == secret
        update = api.user_message(CHAT, "宝鸡哪里可以办卡")
        api.take_updates()
        wrong = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: "guess"})
        assert wrong.status_code == 403
        missing = await http.post(WEBHOOK_PATH, json=update)
        assert missing.status_code == 403
        assert api.delivered[CHAT] == []
        ok = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: secret})
        assert ok.status_code == 200
        # Answered after the reply went out: Telegram sends the chat's next update only then.
        assert len(api.texts(CHAT)) == 1 and "0917-3276018" in api.texts(CHAT)[0]
        again = await http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: secret})
        assert again.status_code == 200 and len(api.texts(CHAT)) == 1
        junk = await http.post(WEBHOOK_PATH, content=b"{not json", headers={SECRET_HEADER: secret})
        assert junk.status_code == 400

        # 200 MB without a Content-Length: refused once past 1 MB, the rest never read.
        sent, answer = await asyncio.to_thread(
            send_chunked, f"http://127.0.0.1:{bot.port}", WEBHOOK_PATH, 200 << 20, headers={SECRET_HEADER: secret}
        )
        assert answer.startswith(b"HTTP/1.1 413") and sent < 32 << 20
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {
            "ok": True, "mode": "webhook", "nlu": "lexical", "nlu_degraded": False, "database": "ok",
        }  # fmt: skip
        metrics = (await http.get("/metrics")).text
        assert "portpal_webhook_rejected_total 2.0" in metrics
        assert "portpal_duplicate_updates_total 1.0" in metrics
        assert "portpal_outbox_pending 0.0" in metrics
        assert "portpal_reply_seconds_count 2.0" in metrics


async def test_while_the_database_is_down_updates_get_503_and_apply_once_when_it_is_back(tmp_path, postgres_server):
    """PostgreSQL refusing connections (a restart, a failover): the webhook answers 503 so
    Telegram sends the update again, /healthz says so, nothing is sent; back up, the
    redelivered update is applied and answered once."""
    import psycopg

    db = database.fresh_postgres_database(postgres_server)
    name = db.rsplit("/", 1)[1]

    def allow(yes: bool) -> None:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(yes).lower()}')
            if not yes:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    async with (
        BotApiDouble() as api,
        running_bot(api, tmp_path, portpal_public_url="https://bot.example.test", database_url=db) as bot,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot.port}") as http,
    ):
        headers = {SECRET_HEADER: webhook_secret(api.token)}
        first = api.user_message(CHAT, "宝鸡哪里可以办卡")
        second = api.user_message(CHAT, "珠海海关数据分中心电话")
        api.take_updates()
        assert (await http.post(WEBHOOK_PATH, json=first, headers=headers)).status_code == 200
        allow(False)
        try:
            refused = await http.post(WEBHOOK_PATH, json=second, headers=headers)
            assert refused.status_code == 503
            health = await http.get("/healthz")
            assert health.status_code == 503 and health.json()["database"].startswith("unreachable")
            assert len(api.texts(CHAT)) == 1, "nothing is sent for an update that was not applied"
        finally:
            allow(True)
        assert (await http.post(WEBHOOK_PATH, json=second, headers=headers)).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        texts = api.texts(CHAT)
        assert len(texts) == 2 and "0756-8125566" in texts[1]
        inbound = [m.text for m in bot.store.transcript("telegram", str(CHAT)) if m.direction == "in"]
        assert inbound == ["宝鸡哪里可以办卡", "珠海海关数据分中心电话"]


async def test_updates_of_one_chat_are_applied_in_order_while_chats_run_concurrently(tmp_path):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        api.fail("sendMessage", *[Fault("slow", delay=0.2)] * 3)
        for i in range(3):
            api.user_message(CHAT, f"/forms {'陕西' if i % 2 else '珠海'}")
            api.user_message(CHAT + i + 1, "宝鸡哪里可以办卡")
        await wait_handled(bot, 6)
        with bot.store.session() as s:
            conv = s.exec(select(Conversation).where(Conversation.chat_id == str(CHAT))).one()
            assert conv.version == 3
        inbound = [m.text for m in bot.store.transcript("telegram", str(CHAT)) if m.direction == "in"]
        assert inbound == ["/forms 珠海", "/forms 陕西", "/forms 珠海"]


@pytest.mark.parametrize(("payload", "status"), [("{}", 400), ("[1]", 400), (json.dumps({"update_id": 5}), 200)])
async def test_webhook_bodies_that_are_not_messages(tmp_path, payload, status):
    async with (
        BotApiDouble() as api,
        running_bot(api, tmp_path, portpal_public_url="https://bot.example.test") as bot,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{bot.port}") as http,
    ):
        response = await http.post(
            WEBHOOK_PATH, content=payload.encode(), headers={SECRET_HEADER: webhook_secret(api.token)}
        )
        assert response.status_code == status
        assert api.delivered == {}


async def test_due_reminders_reach_telegram_and_a_failed_send_is_retried(tmp_path):
    """Reminders that fell due while the bot was down are sent at start-up through the outbox;
    a Bot API failure does not lose them."""
    t0 = datetime.now(UTC) - timedelta(days=20)
    store = Store(database.url_for(tmp_path))
    assistant = Assistant(store, default_lexical(), outbox_channels={"telegram"})
    for event in zhuhai_ticket_submitted(t0):
        await assistant.handle("telegram", str(CHAT), event)
    # Nothing of that conversation was sent (it was "before"); only the reminders are of interest.
    with store.session() as s:
        s.connection().execute(update(OutboxRecord).values(sent_at=datetime.now(UTC)))
        s.commit()
    due = store.due_reminders(datetime.now(UTC))
    assert due
    store.close()
    async with BotApiDouble() as api:
        api.fail("sendMessage", Fault("500"))
        async with running_bot(api, tmp_path) as bot:
            await api.wait_delivered(CHAT, len(due) - 1, timeout=15)
            for _ in range(300):
                if not bot.store.due_reminders(datetime.now(UTC)) and bot.store.outbox_size() == 0:
                    break
                await asyncio.sleep(0.02)
            texts = api.texts(CHAT)
            assert bot.store.due_reminders(datetime.now(UTC)) == []
            assert bot.store.outbox_size() == 0
    assert len(texts) == len(set(texts)) >= 1  # each reminder once
    assert any("工单" in t or "备案" in t for t in texts), texts
    assert len(api.calls_of("sendMessage", CHAT)) == len(texts) + 1  # the failed one, retried


async def test_a_failing_getupdates_is_one_log_line_and_polling_goes_on(tmp_path, caplog):
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        api.fail("getUpdates", Fault("500"), Fault("500"))
        with caplog.at_level(logging.WARNING):
            for _ in range(500):
                if len([r for r in caplog.records if "getUpdates failed, retrying" in r.getMessage()]) == 2:
                    break
                await asyncio.sleep(0.02)
            answer = await TgUser(api, bot, CHAT).say("宝鸡哪里可以办卡")
        assert "0917-3276018" in answer
        failures = [r for r in caplog.records if "getUpdates failed, retrying" in r.getMessage()]
        assert len(failures) == 2 and not any(r.exc_info for r in caplog.records)
        assert 'portpal_errors_total{where="polling"} 2.0' in bot.metrics.render().decode()


# ---------------------------------------------------------------------- card agent
async def test_pair_a_card_agent_from_telegram_and_hear_its_card(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cardagent.client import pair, post_signed
    from cardagent.protocol import PATH_EVENTS

    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, CHAT)
        shown = await user.say("/pair")
        code, server = shown.split("portpal-agent pair ", 1)[1].split()[0], f"http://127.0.0.1:{bot.port}"
        assert f"--server {server}" in shown
        key = Ed25519PrivateKey.generate()
        answer = await asyncio.to_thread(pair, server, code, key, "财务室电脑")
        assert (await api.wait_text(CHAT, "已连接：电脑 财务室电脑")).startswith("已连接")
        change = {"kind": "card_inserted", "reader": "R 00", "atr": "3B", "at": datetime.now(UTC).timestamp()}
        payload = {
            "status": {"service": True, "readers": [{"name": "R 00", "card": True, "atr": "3B"}]},
            "changes": [change],
        }
        await asyncio.to_thread(post_signed, server, PATH_EVENTS, answer["agent_id"], key, 1, payload)
        assert await api.wait_text(CHAT, "检测到读卡器 R 00 中已插入卡片。")
        assert "读卡器 R 00 中已插入卡片。" in await user.say("我的卡插好了吗")
        assert (await user.say("/unpair")).startswith("已断开与电脑 财务室电脑 的连接")


# Conversations in users' own words (tests/data/conversations/tuning/) through the real adapter:
# every turn typed or pressed in Telegram, the stored state judged as the core runner judges it.
TELEGRAM_CONVERSATIONS = (
    "card stated up front, bank counter, online shop, web, to the end",
    "no card, online and mailed, storage and transport firm, MQ with HSM, to the end",
    "code said up front, agent in a sentence, Hengqin bonded import, interface, to the end",
    "English, has the code, not an agent, Doumen 9610 import, client, to the end",
    "SX terse clerk, card, CCB branch, web, to the end",
)


@pytest.mark.parametrize("name", TELEGRAM_CONVERSATIONS)
async def test_conversations_in_users_words_through_telegram(name, tmp_path):
    from tests.auxil.conversations import TUNING_DIR, expectation_problems, load_conversations

    conv = next(c for c in load_conversations(TUNING_DIR) if c.name == name)
    chat = 5000 + TELEGRAM_CONVERSATIONS.index(name)
    async with BotApiDouble() as api, running_bot(api, tmp_path) as bot:
        user = TgUser(api, bot, chat)
        for i, turn in enumerate(conv.turns, 1):
            state = bot.store.load("telegram", str(chat)).state
            progress = state.progress()
            before = dict(progress.answers) if progress else {}
            reply = await (user.press(turn.value) if turn.kind == "press" else user.say(turn.value))
            assert reply, f"turn {i}: no reply to {turn.value!r}"
            state = bot.store.load("telegram", str(chat)).state
            # What the state must be; "answered as a question" is judged by the reply's source line.
            expect = {k: v for k, v in turn.expect.items() if k != "question"}
            problems = expectation_problems(expect, state, None, before)
            if turn.expect.get("question"):
                if "来源：" not in reply and "Source:" not in reply:
                    problems.append("not answered as a question")
                progress = state.progress()
                if progress is not None and dict(progress.answers) != before:
                    problems.append("the question chose an option")
            assert not problems, f"{name} / turn {i} ({turn.value!r}): {'; '.join(problems)}\n{reply}"
