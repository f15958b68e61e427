"""Walkthrough event latency through the whole assistant: load state, understand (lexical),
decide, store state + transcript + reminders, commit. On SQLite and, when a server URL is
given (or ``scripts/test-postgres`` can start one), on PostgreSQL.

Each round walks a new conversation through the whole Shaanxi procedure (有卡, 线下, 电商企业,
Web) with two questions in between: 13 events. Also reports the state size stored per event
and how long one reminder pass over many due reminders takes.

    .venv/bin/python bench/walkthrough_latency.py [--rounds 30] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.assistant import Assistant  # noqa: E402
from bot.core.events import ButtonPress, Event, TextMessage  # noqa: E402
from bot.reminders import ReminderScheduler  # noqa: E402
from bot.store import Store  # noqa: E402
from nlu.lexical import default_lexical  # noqa: E402

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
WALK: list[Event] = [
    TextMessage("我要办理跨境电商入网", at=T0),
    ButtonPress("wt:region:shaanxi", at=T0),
    TextMessage("西安星河贸易有限公司", at=T0),
    ButtonPress("wt:choice:has_card:with_card", at=T0),
    TextMessage("单一窗口推荐用什么浏览器", at=T0),
    ButtonPress("wt:done", at=T0),
    ButtonPress("wt:done", at=T0),
    TextMessage("线下", at=T0),
    TextMessage("宝鸡哪里可以办卡", at=T0),
    ButtonPress("wt:done", at=T0),
    ButtonPress("wt:choice:enterprise_type:ecommerce", at=T0),
    ButtonPress("wt:done", at=T0),
    ButtonPress("wt:choice:open_mode:web", at=T0),
]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def run(url: str, rounds: int) -> None:
    store = Store(url)
    assistant = Assistant(store, default_lexical())
    await assistant.handle("bench", "warm-up", TextMessage("你好", at=T0))
    times: list[float] = []
    for r in range(rounds):
        for event in WALK:
            start = time.perf_counter()
            await assistant.handle("bench", f"c{r}", event)
            times.append((time.perf_counter() - start) * 1000)
    size = len(store.load("bench", "c0").state.model_dump_json())
    print(
        f"  {len(times)} events: p50 {statistics.median(times):.1f} ms, p99 {pct(times, 99):.1f} ms, "
        f"max {max(times):.1f} ms; stored state {size / 1024:.1f} KiB"
    )
    sent = 0

    async def deliver(channel: str, chat_id: str, outcome: object) -> None:
        nonlocal sent
        sent += 1

    later = T0 + timedelta(days=4)
    start = time.perf_counter()
    await ReminderScheduler(assistant, deliver, clock=lambda: later).run_due()
    took = time.perf_counter() - start
    each = took * 1000 / max(sent, 1)
    print(f"  reminder pass: {sent} idle nudges fired in {took * 1000:.0f} ms ({each:.1f} ms each)")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--postgres", help="server URL; default: start one with scripts/test-postgres")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite (WAL):")
        asyncio.run(run(f"sqlite:///{tmp}/bench.sqlite3", args.rounds))
    pg_dir = None
    url = args.postgres
    if url is None and (shutil.which("pg_ctl") or list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))):
        pg_dir = tempfile.mkdtemp(prefix="portpal-bench-pg-")
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "test-postgres"), "start", pg_dir],
                             capture_output=True, text=True, check=True)  # fmt: skip
        url = out.stdout.strip()
    if url:
        import psycopg

        db = url.rsplit("/", 1)[0] + "/portpal_bench"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS portpal_bench")
            conn.execute("CREATE DATABASE portpal_bench")
        print("PostgreSQL (loopback, fsync off):")
        try:
            asyncio.run(run(db, args.rounds))
        finally:
            if pg_dir:
                subprocess.run([sys.executable, str(ROOT / "scripts" / "test-postgres"), "stop", pg_dir],
                               capture_output=True)  # fmt: skip
                shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
