"""The Bot API double answers the real python-telegram-bot ``Bot`` like Telegram would."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

from tests.auxil.botapi import BotApiDouble, Fault


async def test_methods_calls_and_faults(tmp_path):
    async with BotApiDouble() as api:
        bot = Bot(api.token, base_url=api.base_url)
        async with bot:
            assert bot.username == "portpal_test_bot"
            keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("下一步", callback_data="wt:done")]])
            sent = await bot.send_message(42, "你好", reply_markup=keyboard)
            assert sent.chat.id == 42 and sent.text == "你好"
            [call] = api.calls_of("sendMessage", 42)
            assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "wt:done"
            path = tmp_path / "委托书.docx"
            path.write_bytes(b"PK\x03\x04 docx bytes")
            with path.open("rb") as handle:
                doc = await bot.send_document(42, handle, filename=path.name, caption="委托书")
            assert doc.document.file_name == "委托书.docx"
            assert api.documents[doc.document.file_id] == ("委托书.docx", b"PK\x03\x04 docx bytes")
            topic = await bot.create_forum_topic(-100123, "张三 · 陕西")
            assert api.topics[-100123][topic.message_thread_id] == "张三 · 陕西"
            api.fail("sendMessage", Fault("429", retry_after=3))
            with pytest.raises(RetryAfter) as err:
                await bot.send_message(42, "again")
            assert err.value.retry_after.total_seconds() == 3
            with pytest.raises(BadRequest):
                await bot.send_message(42, "x" * 4097)
            api.user_message(42, "/start")
            updates = await bot.get_updates(timeout=1)
            assert updates[0].message.text == "/start" and updates[0].message.chat.id == 42
