"""Running the real Telegram bot (PTB Application, uvicorn, outbox) in the test's event loop
against the Bot API double, and talking to it as a Telegram user would."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.runtime import TelegramBot
from nlu.interpreter import Interpreter
from nlu.lexical import default_lexical
from tests.auxil import database
from tests.auxil.botapi import BotApiDouble


def handled(bot: TelegramBot) -> int:
    """Updates fully handled (applied and replies sent) by this bot process."""
    return int(bot.metrics.registry.get_sample_value("portpal_reply_seconds_count") or 0)


async def wait_handled(bot: TelegramBot, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while handled(bot) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} updates not handled within {timeout} s (handled {handled(bot)})")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_bot(
    api: BotApiDouble,
    data_dir: Path,
    *,
    interpreter: Interpreter | None = None,
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> AsyncIterator[TelegramBot]:
    """A started bot (polling unless ``portpal_public_url`` is given); stopped on exit.
    ``clock``: the reminder scheduler's time (a restart after the bot was down a while)."""
    values: dict[str, Any] = {
        "telegram_bot_token": api.token,
        "telegram_api_base_url": api.base_url,
        "portpal_data_dir": data_dir,
        "database_url": database.url_for(data_dir),
        "portpal_http_port": 0,
        "portpal_telegram_rate": 0,
        **settings,
    }
    bot = TelegramBot(Settings(**values), interpreter or default_lexical())
    # Retry undelivered replies at once rather than after the production settle time.
    bot.channel.outbox.poll = 0.05
    bot.channel.outbox.settle = timedelta(0)
    if clock is not None:
        bot.scheduler.clock = clock
    stop = asyncio.Event()
    ready = asyncio.Event()

    async def started(port: int) -> None:
        ready.set()

    task = asyncio.create_task(bot.run(stop, started))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the start-up error
    assert waiter in done, "the bot did not start within 30 s"
    try:
        yield bot
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class TgUser:
    """One private chat with the bot, driven through the double's update queue."""

    def __init__(self, api: BotApiDouble, bot: TelegramBot, chat_id: int) -> None:
        self.api, self.bot, self.chat_id = api, bot, chat_id

    async def _after(self, push: Any) -> list[dict[str, Any]]:
        before_handled, before_seen = handled(self.bot), len(self.api.delivered[self.chat_id])
        push()
        await wait_handled(self.bot, before_handled + 1)
        return self.api.delivered[self.chat_id][before_seen:]

    async def say(self, text: str) -> str:
        messages = await self._after(lambda: self.api.user_message(self.chat_id, text))
        return "\n".join(m.get("text", "") for m in messages)

    async def press(self, label: str) -> str:
        message_id, keys = self.api.last_keyboard(self.chat_id)
        data = dict(keys)[label]
        messages = await self._after(lambda: self.api.button_press(self.chat_id, data, message_id=message_id))
        return "\n".join(m.get("text", "") or m.get("caption", "") for m in messages)

    def buttons(self) -> list[str]:
        return [label for label, _ in self.api.last_keyboard(self.chat_id)[1]]
