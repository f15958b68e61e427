from __future__ import annotations

import stat

import pytest

from bot.core.state import ConversationState
from bot.store import StaleStateError, Store


def test_new_conversation_starts_empty_and_persists(store, tmp_path):
    loaded = store.load("console", "u1")
    assert loaded.state == ConversationState() and loaded.version == 0
    new = loaded.state.model_copy(update={"region": "zhuhai"})
    assert store.save(loaded, new, [("in", "你好"), ("out", "您好")]) == 1
    again = Store(store.url).load("console", "u1")  # a new process sees it
    assert again.state.region == "zhuhai" and again.version == 1
    assert [m.text for m in store.transcript("console", "u1")] == ["你好", "您好"]


def test_concurrent_writer_gets_stale_state(store):
    first = store.load("console", "u2")
    second = store.load("console", "u2")
    store.save(first, ConversationState(region="shaanxi"), [])
    with pytest.raises(StaleStateError):
        store.save(second, ConversationState(region="zhuhai"), [("in", "lost?")])
    assert store.load("console", "u2").state.region == "shaanxi"
    assert store.transcript("console", "u2") == []


def test_chats_are_separate(store):
    a = store.load("console", "a")
    store.save(a, ConversationState(region="shaanxi"), [])
    assert store.load("console", "b").state.region is None
    assert store.load("telegram", "a").state.region is None


def test_database_file_is_private(store, tmp_path):
    db = tmp_path / "data" / "portpal.sqlite3"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
