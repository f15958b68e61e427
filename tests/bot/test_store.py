from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.state import ConversationState
from bot.store import DuplicateEventError, StaleStateError, Store


def test_new_conversation_starts_empty_and_persists(store, tmp_path):
    loaded = store.load("console", "u1")
    assert loaded.state == ConversationState() and loaded.version == 0
    new = loaded.state.model_copy(update={"region": "zhuhai"})
    assert store.save(loaded, new, [("in", "你好"), ("out", "您好")]).version == 1
    with Store(store.url) as other:  # a new process sees it
        again = other.load("console", "u1")
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


def test_database_file_is_private(tmp_path):
    db = tmp_path / "data" / "portpal.sqlite3"
    Store(f"sqlite:///{db}").close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_event_keys_make_an_event_apply_once(db_url):
    store = Store(db_url)
    first = store.load("telegram", "9")
    store.save(first, ConversationState(region="zhuhai"), [("in", "a")], keys=["telegram:update:1"])
    assert store.load("telegram", "9", ["telegram:update:1"]).seen
    assert not store.load("telegram", "9", ["telegram:update:2"]).seen
    # The same update handled again (loaded before the first save committed): refused whole.
    again = store.load("telegram", "9")
    with pytest.raises(DuplicateEventError):
        store.save(
            again, ConversationState(region="shaanxi"), [("in", "a")], keys=["telegram:update:1"],
            outbox=[("telegram", "9", "{}")],
        )  # fmt: skip
    assert store.load("telegram", "9").state.region == "zhuhai"
    assert [m.text for m in store.transcript("telegram", "9")] == ["a"]
    assert store.outbox_size() == 0
    store.close()


def test_outbox_rows_are_committed_with_the_state_and_leased_once(db_url):
    store = Store(db_url)
    loaded = store.load("telegram", "5")
    store.save(loaded, ConversationState(), [], outbox=[("telegram", "5", "one"), ("telegram", "5", "two")])
    now = datetime.now(UTC)
    rows = store.pending("telegram", "5")
    assert [r.payload for r in rows] == ["one", "two"]
    assert store.claim(rows[0].id, now, timedelta(seconds=60))
    assert not store.claim(rows[0].id, now, timedelta(seconds=60))  # another sender holds it
    assert store.claim(rows[0].id, now + timedelta(seconds=61), timedelta(seconds=60))  # lease ran out
    store.mark_sent([rows[0].id], now)
    assert not store.claim(rows[0].id, now + timedelta(hours=1), timedelta(seconds=60))  # done
    store.postpone(rows[1].id, 1, now + timedelta(seconds=30))
    assert store.chats_with_pending("telegram", now, timedelta(0)) == []  # backing off
    assert store.chats_with_pending("telegram", now + timedelta(seconds=31), timedelta(0)) == ["5"]
    store.mark_failed(rows[1].id, "Forbidden: bot was blocked by the user")
    assert store.pending("telegram", "5") == [] and store.outbox_size("telegram") == 0
    store.close()


def test_long_button_payloads_round_trip(db_url):
    store = Store(db_url)
    payload = "fm:pick:card_issuer:" + "建行" * 40
    key = store.shorten(payload)
    assert store.shorten(payload) == key and len(key) == 32
    assert store.expand(key) == payload and store.expand("0" * 32) is None
    store.close()
