"""A user's data found, exported and deleted everywhere, on SQLite and PostgreSQL: through
/deletedata in the chat, the ``portpal privacy`` commands, and the retention purge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.assistant import Assistant
from bot.core.events import ButtonPress, Command, TextMessage
from bot.core.handoff import Desk, ServiceHours
from bot.privacy import Privacy, chat_documents
from bot.store import (
    AgentRecord,
    Conversation,
    EventKey,
    HandoffRecord,
    MessageRecord,
    OutboxRecord,
    ReminderRecord,
    Store,
)
from cardagent.protocol import new_code

PORTPAL = Path(sys.executable).with_name("portpal")
USER = ("telegram", "4242")
OTHER = ("telegram", "5151")
RIC = "110105194912310029"
TABLES = (Conversation, MessageRecord, ReminderRecord, EventKey, OutboxRecord, HandoffRecord, AgentRecord)


def counts(store: Store, chat: tuple[str, str]) -> dict[str, int]:
    """Rows kept about a chat, per table."""
    with store.session() as s:
        conv = s.exec(
            select(Conversation).where(Conversation.channel == chat[0], Conversation.chat_id == chat[1])
        ).first()
        out = {}
        for table in TABLES:
            if table is Conversation:
                out["conversation"] = int(conv is not None)
            elif table is AgentRecord:
                q = select(func.count()).where(AgentRecord.channel == chat[0], AgentRecord.chat_id == chat[1])
                out["agent"] = int(s.exec(q).one())
            else:
                q = select(func.count()).where(table.conversation_id == (conv.id if conv else -1))
                out[table.__tablename__] = int(s.exec(q).one())
    return out


async def lived(assistant: Assistant, chat: tuple[str, str]) -> None:
    """A user with a bit of everything: transcript, walkthrough reminders, a profile with an
    ID number, a rendered document, a handoff, a card agent."""
    say = lambda text, n: assistant.handle(*chat, TextMessage(text), keys=[f"{chat[1]}:{n}"])  # noqa: E731
    await say("我要办理陕西的跨境电商入网", 1)
    await say("先不填", 2)
    await assistant.handle(*chat, ButtonPress("wt:choice:has_card:with_card"), keys=[f"{chat[1]}:3"])
    await say("帮我生成授权委托书", 4)
    await say(f"法定代表人身份证号 {RIC}", 5)
    await assistant.handle(*chat, Command("human"), keys=[f"{chat[1]}:6"])
    await assistant.handle(*chat, Command("cancel"), keys=[f"{chat[1]}:7"])
    code = new_code()
    await assistant.store.call(assistant.agents.issue, *chat, code)
    await assistant.store.call(assistant.agents.redeem, code, "127.0.0.1", public_key="k" * 44, name="财务室电脑")
    chat_documents(assistant.documents_dir, *chat).mkdir(parents=True, exist_ok=True)
    (chat_documents(assistant.documents_dir, *chat) / "委托书.docx").write_bytes(b"docx")


@pytest.fixture
def assistant(db_url, tmp_path, lexical):
    store = Store(db_url)
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))
    yield Assistant(
        store, lexical, documents_dir=tmp_path / "documents", outbox_channels={"telegram"}, desk=desk,
        staff_route=("telegram", "-100"),
    )  # fmt: skip
    store.close()


async def test_deletedata_in_the_chat_asks_then_deletes_everything_but_its_own_reply(assistant):
    await lived(assistant, USER)
    await lived(assistant, OTHER)
    before, other_before = counts(assistant.store, USER), counts(assistant.store, OTHER)
    assert all(before[t] for t in ("conversation", "message", "reminder", "event_key", "outbox", "handoff", "agent"))

    ask = await assistant.handle(*USER, Command("deletedata"))
    assert "删除后无法恢复" in ask.replies[0].text
    assert [b.label for b in ask.replies[0].buttons] == ["确认删除", "取消"]
    kept = await assistant.handle(*USER, ButtonPress("privacy:keep"))
    assert kept.replies[0].text == "好的，没有删除任何数据。" and counts(assistant.store, USER)["handoff"]

    done = await assistant.handle(*USER, ButtonPress("privacy:delete"), keys=["telegram:update:99"])
    assert done.replies[0].text.startswith("已删除您的全部数据")
    after = counts(assistant.store, USER)
    # What is left: a new, empty conversation holding only the reply that says so (to be sent),
    # and the key of the update that asked (so a redelivery does not ask again).
    assert after == {"conversation": 1, "message": 1, "reminder": 0, "event_key": 1, "outbox": 1, "handoff": 0,
                     "agent": 0}  # fmt: skip
    assert not chat_documents(assistant.documents_dir, *USER).exists()
    state = (await assistant.store.call(assistant.store.load, *USER)).state
    assert state.companies == [] and state.history == [] and state.card is None
    assert [m.text for m in assistant.store.transcript(*USER)] == [done.replies[0].text]
    assert counts(assistant.store, OTHER) == other_before, "another user's data is untouched"
    again = await assistant.handle(*USER, ButtonPress("privacy:delete"), keys=["telegram:update:99"])
    assert again.notes.get("duplicate"), "the redelivered update is not applied twice"
    # What arrives afterwards finds a new user: a stale button of the old conversation, a question.
    stale = await assistant.handle(*USER, ButtonPress("fm:field:legal_rep_name"))
    assert stale.replies[0].text == "这个按钮已经失效，请重新提问或发送 /help。"
    fresh = await assistant.handle(*USER, TextMessage("宝鸡哪里可以办卡"))
    assert "红旗路36号" in fresh.replies[0].text


async def test_deletedata_during_a_handoff_ends_it_and_tells_staff(assistant):
    await assistant.handle(*USER, Command("human"))
    await assistant.handle(*USER, TextMessage(f"我的身份证 {RIC}"))
    ask = await assistant.handle(*USER, Command("deletedata"))
    assert [b.label for b in ask.replies[0].buttons] == ["确认删除", "取消"], "the bot answers, not staff"
    done = await assistant.handle(*USER, ButtonPress("privacy:delete"))
    assert [r.to for r in done.replies] == ["user", "staff"]
    assert done.replies[0].text.startswith("已删除您的全部数据")
    staff = [json.loads(p.payload)["text"] for p in assistant.store.pending("telegram", "-100")]
    assert staff[-1] == "🗑️ 用户删除了自己的全部数据，本次人工服务随之结束。"
    assert counts(assistant.store, USER)["handoff"] == 0
    assert [m.text for m in assistant.store.transcript(*USER)] == [done.replies[0].text]
    after = await assistant.handle(*USER, TextMessage("宝鸡哪里可以办卡"))
    assert "红旗路36号" in after.replies[0].text, "the bot has the conversation again"


async def test_export_has_everything_and_the_cli_exports_and_deletes(assistant, db_url, tmp_path):
    await lived(assistant, USER)
    data = Privacy(assistant.store, assistant.documents_dir).export(*USER)
    assert data is not None and data["user"] == "telegram:4242"
    assert data["conversation"]["state"]["companies"][0]["profile"]  # the profile, unmasked: it is theirs
    assert any("法定代表人身份证号" in m["text"] for m in data["messages"])
    assert data["handoffs"][0]["status"] == "closed" and data["card_agents"][0]["name"] == "财务室电脑"
    assert data["documents"] == ["委托书.docx"] and data["reminders"]

    env = {**os.environ, "DATABASE_URL": db_url, "PORTPAL_DATA_DIR": str(tmp_path / "data")}
    run = lambda *args: subprocess.run([str(PORTPAL), "privacy", *args], capture_output=True, text=True, env=env,  # noqa: E731
                                       stdin=subprocess.DEVNULL, timeout=60)  # fmt: skip
    out = tmp_path / "export.json"
    exported = run("export", "telegram:4242", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["messages"] == data["messages"] and (out.stat().st_mode & 0o077) == 0
    assert run("export", "4242").returncode == 2
    assert run("delete", "telegram:4242").returncode == 2, "no deleting without --yes off a terminal"
    deleted = run("delete", "telegram:4242", "--yes")
    assert deleted.returncode == 0 and deleted.stdout.startswith("deleted telegram:4242: message ")
    assert counts(assistant.store, USER) == dict.fromkeys(counts(assistant.store, USER), 0)
    assert run("export", "telegram:4242").returncode == 1


async def test_the_purge_deletes_conversations_untouched_for_the_retention_period(assistant):
    await lived(assistant, USER)
    await lived(assistant, OTHER)
    with assistant.store.session(write=True) as s:
        old = s.exec(select(Conversation).where(Conversation.chat_id == USER[1])).one()
        old.updated_at = datetime.now(UTC) - timedelta(days=400)
        s.add(old)
        s.commit()
    done = Privacy(assistant.store, assistant.documents_dir).purge(timedelta(days=365))
    assert done.rows["conversation"] == 1 and done.files == 1
    assert counts(assistant.store, USER)["conversation"] == 0
    assert counts(assistant.store, OTHER)["conversation"] == 1
