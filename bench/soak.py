"""Soak: many simulated users for minutes, two bot processes, PostgreSQL.

1,000 users (``--users``) talk to two ``portpal run`` replicas in webhook mode behind a
chat-hashing "proxy" over the Bot API double, sharing one PostgreSQL database (``--db``, or a
throwaway server from scripts/test-postgres). Each user sends the scripted questions one
at a time, waiting for the answer, then thinks for 5 to 15 s (``--think``), for
``--seconds`` (300). Printed: messages handled, latency p50/p99, errors (an answer not
within 30 s, or a webhook call refused), and each process's resident memory after warm-up
and at the end.

Target (issue 9): 0 errors, resident memory grows at most 10% over the run.

    .venv/bin/python bench/soak.py [--users 1000] [--seconds 300] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from telegram_throughput import SCRIPT, calibrate, free_port, pct, start_bot

from bot.api import SECRET_HEADER, WEBHOOK_PATH, webhook_secret
from tests.auxil.botapi import BotApiDouble

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(args: argparse.Namespace, db: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="portpal-soak-"))
    limits = httpx.Limits(max_connections=400)
    async with BotApiDouble() as api, httpx.AsyncClient(timeout=60, limits=limits) as http:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PORTPAL_PUBLIC_URL", "RASA_URL"}}
        env.update(
            TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE_URL=api.base_url, PORTPAL_NLU="lexical",
            PORTPAL_TELEGRAM_RATE="0", PORTPAL_USER_RATE="0", PORTPAL_PUBLIC_URL="https://bot.example.test",
            DATABASE_URL=db,
        )  # fmt: skip
        ports = [free_port() for _ in range(args.replicas)]
        procs = [
            await start_bot({**env, "PORTPAL_HTTP_PORT": str(p), "PORTPAL_DATA_DIR": str(data / f"r{i}")}, p,
                            data / f"bot{i}.log")
            for i, p in enumerate(ports)
        ]  # fmt: skip
        urls = [f"http://127.0.0.1:{port}{WEBHOOK_PATH}" for port in ports]
        secret = {SECRET_HEADER: webhook_secret(api.token)}
        errors = 0

        async def push(chat: int, text: str) -> None:
            nonlocal errors
            update = api.user_message(chat, text)
            api.take_updates()
            response = await http.post(urls[chat % len(urls)], json=update, headers=secret)
            if response.status_code != 200:
                errors += 1

        try:
            counts = await calibrate(api, push, len(SCRIPT))
            # Warm-up: every user's first message, then the memory baseline.
            rng = random.Random(9)
            users = list(range(10_000, 10_000 + args.users))
            sent = dict.fromkeys(users, 0)
            latencies: list[float] = []

            async def say(chat: int) -> None:
                nonlocal errors
                i = sent[chat] % len(SCRIPT)
                sent[chat] += 1
                want = len(api.delivered[chat]) + counts[i]
                started_at = time.perf_counter()
                await push(chat, SCRIPT[i])
                try:
                    await api.wait_delivered(chat, want, timeout=30)
                except TimeoutError:
                    errors += 1
                    return
                latencies.append(time.perf_counter() - started_at)

            await asyncio.gather(*(say(chat) for chat in users))
            await asyncio.sleep(2)
            start_rss = [rss_mb(p.pid) for p in procs]
            warm = len(latencies)
            end = time.monotonic() + args.seconds

            async def user(chat: int) -> None:
                await asyncio.sleep(rng.uniform(0, args.think[1]))
                while time.monotonic() < end:
                    await say(chat)
                    await asyncio.sleep(min(rng.uniform(*args.think), max(0.0, end - time.monotonic())))

            t0 = time.perf_counter()
            await asyncio.gather(*(user(chat) for chat in users))
            elapsed = time.perf_counter() - t0
            end_rss = [rss_mb(p.pid) for p in procs]
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()
    measured = latencies[warm:]
    growth = max((e - s) / s * 100 for s, e in zip(start_rss, end_rss, strict=True))
    print(
        f"soak: {args.users} users, {args.replicas} processes, PostgreSQL, {elapsed:.0f} s: "
        f"{len(measured)} messages ({len(measured) / elapsed:.1f}/s), latency p50 "
        f"{statistics.median(measured) * 1000:.1f} ms p99 {pct(measured, 99) * 1000:.1f} ms, errors {errors}"
    )
    print(
        "  resident memory after warm-up / at the end: "
        + ", ".join(f"{s:.0f} / {e:.0f} MB" for s, e in zip(start_rss, end_rss, strict=True))
        + f" (largest growth {growth:+.1f}%; target at most +10%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0), help="pause between messages, s")
    parser.add_argument("--db", default=None, help="PostgreSQL URL (default: a throwaway server)")
    args = parser.parse_args()
    if args.db:
        asyncio.run(soak(args, args.db))
        return
    pgdir = tempfile.mkdtemp(prefix="portpal-soak-pg-")
    tool = [sys.executable, str(ROOT / "scripts" / "test-postgres")]
    url = subprocess.run([*tool, "start", pgdir], check=True, capture_output=True, text=True).stdout.strip()
    try:
        asyncio.run(soak(args, url))
    finally:
        subprocess.run([*tool, "stop", pgdir], capture_output=True)


if __name__ == "__main__":
    main()
