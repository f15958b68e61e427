"""Messages per second and reply latency through Telegram: N simulated users talk to the
real bot (PTB Application, outbox, store) over the Bot API double on 127.0.0.1.

Each user sends a scripted conversation one message at a time, waiting for the bot's
answer before the next, as people do. Latency is from the moment the update is queued at
the Bot API to the moment the last reply of that update reaches the Bot API: it includes
getUpdates (polling) or the webhook POST. Run: ``python bench/telegram_throughput.py
[--users 50] [--rounds 8] [--mode polling|webhook] [--nlu lexical|rasa] [--db URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import TelegramBot  # noqa: E402
from nlu.config import NluConfig  # noqa: E402
from nlu.engine import open_interpreter  # noqa: E402
from tests.auxil.botapi import BotApiDouble  # noqa: E402

SCRIPT = [
    "我们在陕西",
    "宝鸡哪里可以办卡",
    "单一窗口推荐用什么浏览器",
    "法人卡和操作员卡有什么区别",
    "办卡要带什么材料",
    "海关注册登记怎么办",
    "平台入驻的热线是多少",
    "MQ版要上传什么材料",
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def calibrate(api: BotApiDouble, push: Any, rounds: int) -> list[int]:
    """How many messages each scripted message produces (the conversation is deterministic)."""
    chat = 1
    counts = []
    for i in range(rounds):
        before = len(api.delivered[chat])
        await push(chat, SCRIPT[i % len(SCRIPT)])
        await asyncio.sleep(0.5)  # let every reply of the message arrive
        counts.append(len(api.delivered[chat]) - before)
    return counts


async def run(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="portpal-bench-"))
    async with BotApiDouble() as api, httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        settings: dict[str, Any] = {
            "telegram_bot_token": api.token,
            "telegram_api_base_url": api.base_url,
            "portpal_data_dir": data,
            "portpal_http_port": 0,
            "portpal_telegram_rate": 0,  # the double is not Telegram: measure the bot, not the flood limit
        }
        if args.db:
            settings["database_url"] = args.db
        if args.mode == "webhook":
            settings["portpal_public_url"] = "https://bot.example.test"
        config = NluConfig(mode=args.nlu, model_dir=Settings().rasa_model_dir, log_dir=data / "logs")
        async with open_interpreter(config) as interpreter:
            bot = TelegramBot(Settings(**settings), interpreter)
            stop = asyncio.Event()
            ready = asyncio.Event()

            async def started(port: int) -> None:
                ready.set()

            task = asyncio.create_task(bot.run(stop, started))
            await ready.wait()
            secret = {SECRET_HEADER: webhook_secret(api.token)}
            url = f"http://127.0.0.1:{bot.port}{WEBHOOK_PATH}"

            async def push(chat: int, text: str) -> None:
                update = api.user_message(chat, text)
                if args.mode == "webhook":
                    api.take_updates()
                    response = await http.post(url, json=update, headers=secret)
                    response.raise_for_status()

            counts = await calibrate(api, push, args.rounds)
            latencies: list[float] = []
            errors = 0

            async def user(chat: int) -> None:
                nonlocal errors
                for i in range(args.rounds):
                    want = len(api.delivered[chat]) + counts[i]
                    started_at = time.perf_counter()
                    await push(chat, SCRIPT[i % len(SCRIPT)])
                    while len(api.delivered[chat]) < want:
                        if time.perf_counter() - started_at > 30:
                            errors += 1
                            return
                        await asyncio.sleep(0.0005)
                    latencies.append(time.perf_counter() - started_at)

            t0 = time.perf_counter()
            await asyncio.gather(*(user(1000 + u) for u in range(args.users)))
            elapsed = time.perf_counter() - t0
            stop.set()
            await task
    messages = len(latencies)
    db = "PostgreSQL" if args.db and args.db.startswith("postgres") else "SQLite"
    print(
        f"telegram {args.mode:7s} nlu={interpreter.name:7s} db={db:10s} users={args.users:3d} "
        f"messages={messages:4d} in {elapsed:5.1f} s = {messages / elapsed:6.1f} msg/s   "
        f"latency p50 {statistics.median(latencies) * 1000:6.1f} ms  p99 {pct(latencies, 99) * 1000:6.1f} ms  "
        f"errors {errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mode", choices=["polling", "webhook"], default="polling")
    parser.add_argument("--nlu", choices=["lexical", "rasa"], default="lexical")
    parser.add_argument("--db", default=None, help="database URL (default: a SQLite file in a temp dir)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
