"""Handoffs through the assistant and the store: staff replies routed to the staff group's
outbox with their ticket, handoff rows mirrored from the state, the transcript kept at
close, topics mapped back to conversations. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.core.events import Command, StaffMessage, TextMessage
from bot.core.handoff import Desk, ServiceHours
from bot.outbox import Ticket, decode_reply
from bot.reports import HANDOFF_COLUMNS
from bot.store import Store

PORTPAL = Path(sys.executable).with_name("portpal")
STAFF = ("telegram", "-1001234567890")
USER = "4242"
MOBILE = "13800138000"


@pytest.fixture
def desk(db_url: str) -> Iterator[tuple[Store, Assistant]]:
    store = Store(db_url)
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))
    yield store, Assistant(store, outbox_channels={"telegram"}, desk=desk, staff_route=STAFF)
    store.close()


def rows(store: Store, chat: str) -> list:
    return [decode_reply(p.payload) for p in store.pending("telegram", chat)]


async def test_staff_replies_go_to_the_staff_group_with_their_ticket(desk):
    store, assistant = desk
    await assistant.handle("telegram", USER, Command("human"))
    await assistant.handle("telegram", USER, TextMessage(f"请打给我 {MOBILE}"))
    to_user, to_staff = rows(store, USER), rows(store, STAFF[1])
    assert len(to_user) == 1 and "转接人工客服" in to_user[0].text
    assert [r.to for r in to_staff] == ["staff", "staff"]
    assert to_staff[0].meta["ticket"] == Ticket("telegram", USER, 1, USER)
    assert "人工服务请求 #1" in to_staff[0].text and to_staff[1].text == "👤 请打给我 138****8000"

    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", text="好的，稍后致电。"))
    assert rows(store, USER)[-1].text == "客服：好的，稍后致电。"
    [record] = store.handoffs_since(datetime.now(UTC) - timedelta(hours=1))
    assert (record.number, record.status, record.staff_name, record.reason) == (1, "held", "王芳", "asked")
    assert record.claimed_at is not None and record.transcript is None


async def test_close_keeps_a_masked_transcript_and_topics_lead_back_to_the_user(desk):
    store, assistant = desk
    await assistant.handle("telegram", USER, Command("human"))
    assert store.set_handoff_topic("telegram", USER, 1, f"{STAFF[1]}:501") == f"{STAFF[1]}:501"
    # A second process that opened a topic too is told to use the first one.
    assert store.set_handoff_topic("telegram", USER, 1, f"{STAFF[1]}:502") == f"{STAFF[1]}:501"
    assert store.handoff_topic("telegram", USER, 1) == f"{STAFF[1]}:501"
    assert store.conversation_of_topic(f"{STAFF[1]}:501") == ("telegram", USER)
    assert store.conversation_of_topic(f"{STAFF[1]}:999") is None

    await assistant.handle("telegram", USER, TextMessage(f"我的手机 {MOBILE}"))
    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", command="note", args="已回电"))
    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", command="close", args="已电话解决"))
    [record] = store.handoffs_since(datetime.now(UTC) - timedelta(hours=1))
    assert record.status == "closed" and record.resolution == "已电话解决"
    assert json.loads(record.notes) == ["王芳: 已回电"]
    transcript = json.loads(record.transcript or "[]")
    said = [text for _, text, _ in transcript]
    assert "/human" in said and f"我的手机 {MOBILE}" not in said and "我的手机 138****8000" in said
    assert any("已电话解决" in text for text in said)
    assert all(MOBILE not in text for text in said)
    # The topic stays with its handoff; a second handoff gets a row (and later a topic) of its own.
    await assistant.handle("telegram", USER, Command("human"))
    second = store.handoffs_since(datetime.now(UTC) - timedelta(hours=1))
    assert [(r.number, r.status, r.topic) for r in second] == [(1, "closed", f"{STAFF[1]}:501"), (2, "waiting", None)]


async def test_the_export_gives_waiting_and_handling_times_masked(db_url, tmp_path):
    store = Store(db_url)
    assistant = Assistant(store, outbox_channels={"telegram"}, desk=Desk(enabled=True), staff_route=STAFF)
    t0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    await assistant.handle("telegram", USER, Command("human", at=t0))
    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", command="take", at=t0 + timedelta(minutes=3)))
    note = StaffMessage("77", "王芳", command="note", args=f"回电 {MOBILE}", at=t0 + timedelta(minutes=4))
    await assistant.handle("telegram", USER, note)
    done = StaffMessage("77", "王芳", command="close", args="已解决", at=t0 + timedelta(minutes=10))
    await assistant.handle("telegram", USER, done)
    await assistant.handle("telegram", "5555", TextMessage("转人工", at=t0 + timedelta(hours=1)))  # still open
    store.close()

    env = {**os.environ, "DATABASE_URL": db_url}
    out = tmp_path / "handoffs.csv"
    run = [str(PORTPAL), "handoff", "export", "--since", "2026-11-24", "--out", str(out)]
    done_run = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert done_run.returncode == 0, done_run.stderr
    lines = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    first = lines[0]
    assert (first["reason"], first["status"], first["staff"], first["resolution"]) == (
        "asked",
        "closed",
        "王芳",
        "已解决",
    )
    assert (first["waiting_minutes"], first["handling_minutes"]) == ("3.0", "7.0")
    assert first["notes"] == "王芳: 回电 138****8000" and USER not in first["user"]
    assert MOBILE not in out.read_text(encoding="utf-8")
    assert [(r["reason"], r["status"], r["waiting_minutes"]) for r in lines[1:]] == [("asked", "waiting", "")]

    later = subprocess.run([*run[:4], "2099-01-01"], env=env, capture_output=True, text=True, timeout=60)
    assert later.returncode == 0 and later.stdout.splitlines() == [",".join(HANDOFF_COLUMNS)]
    bad = subprocess.run([*run[:4], "24.11.2026"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "expected a date as YYYY-MM-DD" in bad.stderr
