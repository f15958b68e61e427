"""Every statement the bot runs while it works uses an index, on SQLite and PostgreSQL.

The statements are not listed here: they are captured from the database driver while a
user asks, walks through a procedure, presses buttons, talks to staff, and while the
outbox, the reminders and the card-agent registry do their rounds. Each one is then
explained by the database itself: a full table scan in any plan fails the test (on
PostgreSQL with sequential scans discouraged, so a usable index is always chosen). The
daily retention purge and the offline reports (`portpal stats`, exports) are not in
the loop and may scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event
from sqlmodel import SQLModel

from bot.agents import Agents
from bot.assistant import Assistant
from bot.core.events import ButtonPress, Command, StaffMessage, TextMessage
from bot.core.handoff import Desk, ServiceHours
from bot.store import Store
from cardagent.protocol import canonical, new_code, public_key_text, sign

USER = "4242"
STAFF = ("telegram", "-1001234567890")


@pytest.fixture
def captured(db_url: str) -> Iterator[tuple[Store, list[tuple[str, Any]]]]:
    store = Store(db_url)
    seen: list[tuple[str, Any]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not executemany:
            seen.append((statement, parameters))

    yield store, seen
    store.close()


async def _work(store: Store) -> None:
    """A day's work in small: every kind of event and every background round."""
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))
    assistant = Assistant(store, outbox_channels={"telegram"}, desk=desk, staff_route=STAFF)
    now = datetime.now(UTC)
    for text in ("/start", "宝鸡哪里可以办卡", "我要办理珠海的跨境电商入网", "推荐一家餐厅"):
        event_ = Command(text[1:]) if text.startswith("/") else TextMessage(text)
        await assistant.handle("telegram", USER, event_)
    pending = store.pending("telegram", USER)
    assert pending, "replies wait in the outbox"
    await assistant.handle("telegram", USER, ButtonPress("wt:start:zhuhai"))
    await assistant.handle("telegram", USER, Command("human"))
    await assistant.handle("telegram", USER, TextMessage("请回电 13800138000"))
    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", text="好的"))
    store.set_handoff_topic("telegram", USER, 1, f"{STAFF[1]}:501")
    assert store.conversation_of_topic(f"{STAFF[1]}:501") == ("telegram", USER)
    store.handoff_topic("telegram", USER, 1)
    await assistant.handle("telegram", USER, StaffMessage("77", "王芳", command="close", args="已解决"))

    # The outbox's round (after the leases the handling process took have ended): chats
    # with due replies, claim, send, the size for /metrics.
    later = now + timedelta(minutes=2)
    for chat in store.chats_with_pending("telegram", later, timedelta(0)):
        rows = store.pending("telegram", chat)
        assert store.claim(rows[0].id, later, timedelta(seconds=60))
        store.mark_sent([rows[0].id], later)
        store.release([r.id for r in rows[1:2]])
    store.outbox_size()
    store.outbox_size("telegram")
    store.expand(store.shorten("wt:" + "x" * 80))
    # The reminder scheduler's round.
    store.due_reminders(now + timedelta(days=30), {"telegram"})
    store.next_due({"telegram"})
    # The card-agent registry: pairing, a signed report, the silence check, lookups.
    agents = Agents(store)
    code = new_code()
    agents.issue("telegram", USER, code)
    key = Ed25519PrivateKey.generate()
    paired = agents.redeem(code.lower(), "127.0.0.1", public_key=public_key_text(key), name="财务室电脑")
    stamp, body = int(now.timestamp()), b'{"events": []}'
    signature = sign(key, canonical("POST", "/agent/events", paired.agent_id, stamp, 1, body))
    agents.accept(paired.agent_id, "POST", "/agent/events", stamp, 1, body, signature)
    agents.save_status(paired.agent_id, "{}")
    agents.gone_silent(now - timedelta(minutes=2))
    agents.of_chat("telegram", USER)
    agents.locked("203.0.113.9")


def _partial_indexes() -> set[str]:
    """Indexes of some rows only (a walk over one of them reads just those rows)."""
    return {
        str(index.name)
        for table in SQLModel.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options["sqlite"].get("where") is not None
    }


def _scans_sqlite(store: Store, statement: str, parameters: Any) -> list[str]:
    """Plan steps that walk a whole table or a whole index ("SCAN"; "SEARCH" uses a key)."""
    with store.engine.connect() as conn:
        steps = [str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    partial = _partial_indexes()
    return [s for s in steps if s.startswith("SCAN ") and not any(f"INDEX {name}" in s for name in partial)]


def _scans_postgresql(store: Store, statement: str, parameters: Any) -> list[str]:
    """Plan nodes that read a whole table: a sequential scan, or an index walked without a
    condition on it (unless the index is partial)."""
    import psycopg

    with store.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        with psycopg.ClientCursor(raw) as cur:
            cur.execute("SET LOCAL enable_seqscan = off")
            cur.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)  # type: ignore[arg-type]
            (row,) = cur.fetchall()
        conn.rollback()
    partial, bad = _partial_indexes(), []

    def walk(node: dict[str, Any]) -> None:
        kind = node["Node Type"]
        if kind == "Seq Scan":
            bad.append(f"Seq Scan on {node['Relation Name']}")
        elif (
            kind in {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}
            and "Index Cond" not in node
            and node["Index Name"] not in partial
        ):
            bad.append(f"{kind} of all of {node['Index Name']}")
        for child in node.get("Plans", []):
            walk(child)

    walk(row[0][0]["Plan"])
    return bad


async def test_every_statement_of_the_bots_rounds_uses_an_index(captured):
    store, seen = captured
    await _work(store)
    statements = {s: p for s, p in seen if s.lstrip().split(None, 1)[0].upper() in {"SELECT", "UPDATE", "DELETE"}}
    touched = {t for s in statements for t in ("conversation", "outbox", "reminder", "agent", "handoff") if t in s}
    assert touched == {"conversation", "outbox", "reminder", "agent", "handoff"}, "the work reached every table"
    assert len(statements) >= 20
    scans = _scans_sqlite if store.engine.dialect.name == "sqlite" else _scans_postgresql
    scanning = {}
    for statement, parameters in statements.items():
        if bad := scans(store, statement, parameters):
            scanning[" ".join(statement.split())[:200]] = bad
    report = "\n".join(f"{statement}\n    {steps}" for statement, steps in scanning.items())
    assert not scanning, f"statements that scan a whole table:\n{report}"
