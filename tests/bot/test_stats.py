"""``portpal stats`` over a store with real conversations (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.assistant import Assistant
from bot.core.events import ButtonPress, Command, TextMessage
from bot.stats import collect
from bot.store import Store

PORTPAL = Path(sys.executable).with_name("portpal")


async def test_stats_count_answers_list_the_unanswered_and_follow_the_walkthrough(db_url, lexical, kb):
    store = Store(db_url)
    try:
        assistant = Assistant(store, lexical)
        for chat in ("a", "b"):
            await assistant.handle("telegram", chat, TextMessage("宝鸡哪里可以办卡"))
            await assistant.handle("telegram", chat, TextMessage("今天晚饭吃什么好呢"))
        await assistant.handle("telegram", "a", TextMessage("我要办理陕西的跨境电商入网"))
        await assistant.handle("telegram", "a", TextMessage("先不填"))
        await assistant.handle("telegram", "a", ButtonPress("wt:choice:has_card:no_card"))
        await assistant.handle("telegram", "a", ButtonPress("wt:done"))
        await assistant.handle("telegram", "b", Command("help"))
        figures = collect(store, kb)
    finally:
        store.close()
    assert figures.conversations == 2
    assert figures.questions == 4 and figures.unanswered == {"今天晚饭吃什么好呢": 2}
    steps = figures.steps["shaanxi"]
    assert (steps["sw_register"].reached, steps["sw_register"].done) == (1, 1)
    assert (steps["customs_registration"].reached, steps["customs_registration"].current) == (1, 1)
    assert steps["platform_access"].reached == 0
    text = figures.text(kb)
    assert "questions: 4, answered from the manuals: 2 (50.0%)" in text and "2 × 今天晚饭吃什么好呢" in text

    env = {**os.environ, "DATABASE_URL": db_url}
    done = subprocess.run([str(PORTPAL), "stats", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["unanswered"] == [{"text": "今天晚饭吃什么好呢", "times": 2}]
    assert data["walkthrough"]["shaanxi"]["sw_register"]["done"] == 1
