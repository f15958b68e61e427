"""Messages per second and reply latency through Telegram: simulated users talk to the
real bot (``portpal run`` in its own process) over the Bot API double on 127.0.0.1.

Each user sends a scripted conversation one message at a time, waiting for the bot's
answer before the next, as people do. Two ways to load the bot:

- ``--rate R`` (open loop): messages arrive at R per second on average (Poisson arrivals,
  as from many independent users), each from a user who is not waiting for an answer.
  This is the figure for a target such as "200 messages/s with p99 at most 100 ms": the
  latency is what a user sees at that load.
- ``--users N`` (closed loop, the default): N users each send their next message the moment
  the last answer arrives. This finds the most the bot can do; latency is then mostly
  queueing (N users / throughput, by Little's law).

Latency is from the moment the update is queued at the Bot API to the moment the last reply
of that update reaches the Bot API: it includes getUpdates (polling) or the webhook POST.
Run: ``python bench/telegram_throughput.py [--users 50 | --rate 200 --seconds 10]
[--rounds 8] [--mode polling|webhook] [--replicas N] [--nlu lexical|rasa] [--db URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PTB_TIMEDELTA", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from bot.config import Settings
from tests.auxil.botapi import BotApiDouble

PORTPAL = Path(sys.executable).with_name("portpal")

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


async def start_bot(env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    """``portpal run`` in its own process (Telegram is not in the bot's process either)."""
    out = log.open("wb")
    # BENCH_PROFILE=FILE: run the bot under cProfile (the event loop's thread) and save there.
    profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *profile, str(PORTPAL), "run", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
    )
    async with httpx.AsyncClient() as http:
        for _ in range(1200):
            if proc.returncode is not None:
                raise SystemExit(f"portpal run exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"portpal run did not start:\n{log.read_text()}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run(args: argparse.Namespace) -> None:
    # Open loop: twice the users needed, so that one who is not waiting for an answer is
    # always there, even near the end.
    total = round(args.rate * args.seconds) if args.rate else args.users * args.rounds
    users = 2 * math.ceil(total / args.rounds) if args.rate else args.users
    data = Path(tempfile.mkdtemp(prefix="portpal-bench-"))
    async with BotApiDouble() as api, httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PORTPAL_PUBLIC_URL"}}
        env.update(
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_API_BASE_URL=api.base_url,
            PORTPAL_NLU=args.nlu,
            # The double is not Telegram: measure the bot, not Telegram's flood limit.
            PORTPAL_TELEGRAM_RATE="0",
            PORTPAL_USER_RATE="0",  # simulated users send far faster than people
        )
        if args.db:
            env["DATABASE_URL"] = args.db
        # The bot's data dir is a temporary one; the trained Rasa model is where `make model` put it.
        env.setdefault("PORTPAL_RASA_MODEL_DIR", str(Settings().rasa_model_dir))
        if args.mode == "webhook":
            env["PORTPAL_PUBLIC_URL"] = "https://bot.example.test"
        ports = [free_port() for _ in range(args.replicas)]
        procs = []
        for i, port in enumerate(ports):
            replica_env = {**env, "PORTPAL_HTTP_PORT": str(port), "PORTPAL_DATA_DIR": str(data / f"r{i}")}
            if not args.db:  # replicas share the SQLite file of the first one
                replica_env["DATABASE_URL"] = f"sqlite:///{data / 'portpal.sqlite3'}"
            procs.append(await start_bot(replica_env, port, data / f"bot{i}.log"))
        secret = {SECRET_HEADER: webhook_secret(api.token)}
        urls = [f"http://127.0.0.1:{port}{WEBHOOK_PATH}" for port in ports]
        try:

            async def push(chat: int, text: str) -> None:
                update = api.user_message(chat, text)
                if args.mode == "webhook":
                    api.take_updates()
                    # A reverse proxy hashing on the chat would send each chat to one replica.
                    response = await http.post(urls[chat % len(urls)], json=update, headers=secret)
                    response.raise_for_status()

            counts = await calibrate(api, push, args.rounds)
            latencies: list[float] = []
            arrivals: list[float] = []  # when each measured message was sent, for BENCH_TRACE
            errors = 0
            skipped = 0  # open loop: arrivals with no user free to send them (the bot is far behind)
            sent = dict.fromkeys(range(1000, 1000 + users), 0)  # chat -> messages sent

            async def say(chat: int) -> bool:
                """The chat's next scripted message; False when the answer did not come."""
                nonlocal errors
                i = sent[chat]
                sent[chat] += 1
                want = len(api.delivered[chat]) + counts[i]
                started_at = time.perf_counter()
                await push(chat, SCRIPT[i % len(SCRIPT)])
                try:
                    await api.wait_delivered(chat, want, timeout=30)
                except TimeoutError:
                    errors += 1
                    return False
                latencies.append(time.perf_counter() - started_at)
                arrivals.append(started_at)
                return True

            async def closed_loop(chat: int) -> None:
                for _ in range(args.rounds):
                    if not await say(chat):
                        return

            async def open_loop() -> None:
                """Poisson arrivals at ``args.rate``, each from a user not waiting for an answer."""
                nonlocal skipped
                rng = random.Random(7)
                idle = [c for c in sent for _ in range(args.rounds)]  # each user ``rounds`` times
                rng.shuffle(idle)
                waiting: set[int] = set()
                tasks = []
                due = time.perf_counter()
                for _ in range(total):
                    due += rng.expovariate(args.rate)
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    chat = next((c for c in idle if c not in waiting), None)
                    if chat is None:  # every remaining user is still waiting: the bot is behind
                        skipped += 1
                        continue
                    idle.remove(chat)
                    waiting.add(chat)
                    task = asyncio.create_task(say(chat))
                    task.add_done_callback(lambda _t, c=chat: waiting.discard(c))
                    tasks.append(task)
                await asyncio.gather(*tasks)

            cpu0 = sum(cpu_seconds(p.pid) for p in procs)
            t0 = time.perf_counter()
            if args.rate:
                await open_loop()
            else:
                await asyncio.gather(*(closed_loop(chat) for chat in sent))
            elapsed = time.perf_counter() - t0
            cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
            health = (await http.get(f"http://127.0.0.1:{ports[0]}/healthz")).json()
            inside: dict[str, float] = {}
            for port in ports:
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                for line in metrics.splitlines():
                    if line.startswith("portpal_reply_seconds_"):
                        name, value = line.split(" ")
                        inside[name] = inside.get(name, 0.0) + float(value)
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()
    messages = len(latencies)
    if os.environ.get("BENCH_TRACE"):  # FILE: one "seconds-into-the-run latency-ms" line per message
        with Path(os.environ["BENCH_TRACE"]).open("w") as trace:
            trace.writelines(f"{a - t0:.4f} {lat * 1000:.2f}\n" for a, lat in zip(arrivals, latencies, strict=True))
    db = "PostgreSQL" if args.db and args.db.startswith("postgres") else "SQLite"
    load = f"rate={args.rate:g}/s" if args.rate else f"users={users}"
    print(
        f"telegram {args.mode:7s} x{args.replicas} nlu={health['nlu']:7s} db={db:10s} {load:11s} "
        f"messages={messages:4d} in {elapsed:5.1f} s = {messages / elapsed:6.1f} msg/s   "
        f"latency p50 {statistics.median(latencies) * 1000:6.1f} ms  p99 {pct(latencies, 99) * 1000:6.1f} ms  "
        f"errors {errors}" + (f"  skipped {skipped}" if skipped else "")
    )
    count = float(inside.get("portpal_reply_seconds_count", 0))
    if count:
        mean = float(inside["portpal_reply_seconds_sum"]) / count * 1000
        print(f"  inside the bot (update handler start to last reply accepted): mean {mean:.1f} ms")
    print(
        f"  bot CPU: {cpu / max(1, messages) * 1000:.1f} ms per message, {cpu / elapsed * 100:.0f}% of one core "
        f"over {args.replicas} process(es)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50, help="closed loop: users talking at once")
    parser.add_argument("--rate", type=float, default=0, help="open loop: messages per second offered")
    parser.add_argument("--seconds", type=float, default=10, help="open loop: for how long")
    parser.add_argument("--rounds", type=int, default=8, help="messages per user")
    parser.add_argument("--mode", choices=["polling", "webhook"], default="polling")
    parser.add_argument("--nlu", choices=["lexical", "rasa"], default="lexical")
    parser.add_argument("--replicas", type=int, default=1, help="bot processes (webhook mode only)")
    parser.add_argument("--db", default=None, help="database URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()
    if args.replicas > 1 and args.mode != "webhook":
        parser.error("--replicas needs --mode webhook (Telegram hands polled updates to one consumer)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
