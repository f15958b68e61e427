"""The reminder scheduler over a real store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.assistant import Assistant
from bot.reminders import ReminderScheduler
from bot.store import Store
from tests.auxil.chat import zhuhai_ticket_submitted

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # a Friday, 09:00 in China


@pytest.fixture
def opened(db_url):
    """Stores opened by a test, closed after it (a restart opens a second one)."""
    stores: list[Store] = []

    def open_store() -> Store:
        stores.append(Store(db_url))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


async def _zhuhai_ticket_submitted(db_url, lexical, retriever) -> None:
    """A Zhuhai walkthrough at local filing with both milestones reported, then 'shut down'."""
    assistant = Assistant(Store(db_url), lexical, retriever)
    for event in zhuhai_ticket_submitted(T0):
        await assistant.handle("console", "u1", event)
    assistant.store.close()


async def test_reminders_are_rescheduled_after_a_restart_and_sent_once(db_url, opened, lexical, retriever):
    await _zhuhai_ticket_submitted(db_url, lexical, retriever)
    store = opened()  # the restarted bot knows nothing but the database
    assert store.next_due() == T0 + timedelta(days=3)  # idle nudge before the Monday reminder
    assert len(store.due_reminders(T0 + timedelta(days=14))) == 3

    sent: list[tuple[str, str, str]] = []

    async def deliver(channel, chat_id, outcome):
        sent.extend((channel, chat_id, r.text) for r in outcome.replies)

    now = T0 + timedelta(days=3, hours=1)  # Monday 10:00 in China
    scheduler = ReminderScheduler(Assistant(store, lexical, retriever), deliver, clock=lambda: now)
    assert await scheduler.run_due() == 2  # the idle nudge and the 1-working-day reminder
    texts = [t for _, _, t in sent]
    assert any("客服平台账号 2026-11-27 注册" in t and "020-95198 转 3" in t for t in texts)
    assert any("停在第 3/5 步" in t for t in texts)
    assert {(c, u) for c, u, _ in sent} == {("console", "u1")}
    assert await scheduler.run_due() == 0, "nothing is sent twice"
    assert store.next_due() == datetime(2026, 12, 11, 1, 0, tzinfo=UTC)  # 10 working days, 09:00 China


async def test_other_channels_reminders_are_left_alone(db_url, opened, lexical, retriever):
    await _zhuhai_ticket_submitted(db_url, lexical, retriever)
    store = opened()
    delivered = []

    async def deliver(channel, chat_id, outcome):
        delivered.append(chat_id)

    later = T0 + timedelta(days=30)
    scheduler = ReminderScheduler(
        Assistant(store, lexical, retriever), deliver, channels=["telegram"], clock=lambda: later
    )
    assert await scheduler.run_due() == 0 and delivered == []
    assert len(store.due_reminders(later)) == 3


async def test_a_failed_delivery_is_logged_with_context(db_url, opened, lexical, retriever, caplog):
    await _zhuhai_ticket_submitted(db_url, lexical, retriever)
    store = opened()

    async def broken(channel, chat_id, outcome):
        raise ConnectionError("terminal closed")

    later = T0 + timedelta(days=30)
    scheduler = ReminderScheduler(Assistant(store, lexical, retriever), broken, clock=lambda: later)
    with caplog.at_level(logging.ERROR, logger="bot.reminders"):
        assert await scheduler.run_due() == 0
    failures = [r for r in caplog.records if r.message == "reminder could not be delivered"]
    assert len(failures) == 3
    assert {r.chat_id for r in failures} == {"u1"} and all(r.reminder for r in failures)
    # The transcript keeps what could not be delivered.
    assert any("本地备案工单" in m.text for m in store.transcript("console", "u1") if m.direction == "out")
