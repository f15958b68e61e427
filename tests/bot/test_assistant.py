"""The assistant around the core: the per-user message rate."""

from __future__ import annotations

from bot.assistant import Assistant
from bot.core.events import Command, TextMessage
from bot.core.handoff import Desk, ServiceHours
from bot.store import Store

CHAT = ("telegram", "777")


async def test_a_user_over_the_rate_is_told_once_and_recorded_but_not_answered(db_url, lexical):
    store = Store(db_url)
    assistant = Assistant(store, lexical, user_rate=5)
    try:
        replies = [(await assistant.handle(*CHAT, TextMessage(f"宝鸡哪里可以办卡 {i}"))).replies for i in range(8)]
        assert all("红旗路36号" in r[0].text for r in replies[:5])
        assert (
            len(replies[5]) == 1
            and replies[5][0].text.startswith("您发消息太快了")
            and "秒后再发" in replies[5][0].text
        )
        assert replies[6] == [] and replies[7] == []
        transcript = [m.text for m in store.transcript(*CHAT) if m.direction == "in"]
        assert transcript == [f"宝鸡哪里可以办卡 {i}" for i in range(8)], "nothing the user sent is lost"
        other = await assistant.handle("telegram", "778", TextMessage("宝鸡哪里可以办卡"))
        assert "红旗路36号" in other.replies[0].text, "the limit is per user"
    finally:
        store.close()


async def test_messages_for_staff_are_not_limited(db_url, lexical):
    store = Store(db_url)
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))
    assistant = Assistant(store, lexical, user_rate=3, desk=desk, staff_route=("telegram", "-100"))
    try:
        await assistant.handle(*CHAT, Command("human"))
        for i in range(10):
            outcome = await assistant.handle(*CHAT, TextMessage(f"补充说明 {i}"))
            assert [r.to for r in outcome.replies] == ["staff"], f"message {i} is relayed"
    finally:
        store.close()


async def test_json_logs_carry_each_events_context_masked(db_url, lexical, capsys):
    import json
    import logging

    from bot.logs import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging(logging.INFO, "json")
    store = Store(db_url)
    try:
        assistant = Assistant(store, lexical)
        await assistant.handle(*CHAT, TextMessage("宝鸡哪里可以办卡，我的手机 13800138000", update_id=41))
    finally:
        store.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    handled = [entry for entry in lines if entry["message"] == "event handled"]
    assert len(handled) == 1
    entry = handled[0]
    assert entry["channel"] == "telegram" and entry["chat_id"] == "777" and entry["update_id"] == 41
    assert entry["event"] == "TextMessage" and entry["engine"] == "lexical" and entry["latency_ms"] > 0
    assert isinstance(entry["conversation_id"], int) and entry["level"] == "INFO" and entry["ts"].endswith("+00:00")
    assert "13800138000" not in err and lines, "the mobile in the text never reaches the log"


async def test_nul_characters_are_dropped_before_anything_is_stored(db_url, lexical):
    """PostgreSQL cannot store NUL in text: a message with one must still be answered and kept."""
    store = Store(db_url)
    try:
        assistant = Assistant(store, lexical)
        outcome = await assistant.handle(*CHAT, TextMessage("宝鸡\x00哪里可以办卡"))
        assert "红旗路36号" in outcome.replies[0].text
        await assistant.handle(*CHAT, Command("walkthrough", "\x00"))
        inbound = [m.text for m in store.transcript(*CHAT) if m.direction == "in"]
        assert inbound[0] == "宝鸡哪里可以办卡" and "\x00" not in "".join(inbound)
    finally:
        store.close()
