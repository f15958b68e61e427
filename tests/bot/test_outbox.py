"""The outbox sender with a recording transport (the fake is at the transport boundary)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.replies import Button, Document, Reply
from bot.core.state import ConversationState
from bot.outbox import DeliveryError, Outbox, decode_reply, encode_reply


class Transport:
    """Delivers replies to a list; fails as scripted."""

    def __init__(self, *failures: DeliveryError | None) -> None:
        self.failures = list(failures)
        self.delivered: list[tuple[str, str]] = []

    async def send(self, chat_id: str, reply: Reply) -> None:
        if self.failures:
            failure = self.failures.pop(0)
            if failure is not None:
                raise failure
        self.delivered.append((chat_id, reply.text))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)  # rows are stamped with the real time

    def __call__(self) -> datetime:
        return self.now


def commit(store, chat: str, *texts: str) -> None:
    loaded = store.load("telegram", chat)
    store.save(loaded, ConversationState(), [], outbox=[("telegram", chat, encode_reply(Reply(t))) for t in texts])


def test_replies_survive_encoding():
    reply = Reply("文件", (Button("继续", "wt:next"),), Document(Path("/tmp/a b.docx"), "a b.docx", "说明"))
    assert decode_reply(encode_reply(reply)) == reply


async def test_a_failing_reply_keeps_its_place_and_is_retried_after_its_back_off(store):
    clock = Clock()
    transport = Transport(DeliveryError("flood", retry_after=30))
    outbox = Outbox(store, "telegram", transport.send, clock=clock, settle=timedelta(0))
    commit(store, "1", "first", "second")
    assert await outbox.flush("1") == 0
    commit(store, "1", "third")
    assert await outbox.flush("1") == 0  # still backing off: nothing overtakes "first"
    assert transport.delivered == []
    clock.now += timedelta(seconds=31)
    assert await outbox.run_once() == 3
    assert [text for _, text in transport.delivered] == ["first", "second", "third"]
    assert store.outbox_size() == 0


async def test_permanent_failures_are_dropped_and_logged_and_the_rest_go_on(store, caplog):
    transport = Transport(DeliveryError("Forbidden: bot was blocked", permanent=True))
    outbox = Outbox(store, "telegram", transport.send, clock=Clock())
    commit(store, "2", "lost", "next")
    assert await outbox.flush("2") == 1
    assert transport.delivered == [("2", "next")]
    assert "reply dropped: Forbidden: bot was blocked" in caplog.text
    assert caplog.records[-1].chat_id == "2"


async def test_an_unexpected_error_is_retried_not_lost(store, caplog):
    class Boom(Transport):
        async def send(self, chat_id, reply):
            if not self.delivered and not getattr(self, "failed", False):
                self.failed = True
                raise RuntimeError("bug in a transport")
            await super().send(chat_id, reply)

    clock = Clock()
    transport = Boom()
    outbox = Outbox(store, "telegram", transport.send, clock=clock, settle=timedelta(0))
    commit(store, "3", "hello")
    assert await outbox.flush("3") == 0
    assert "reply sending failed" in caplog.text
    clock.now += timedelta(seconds=2)
    assert await outbox.run_once() == 1 and transport.delivered == [("3", "hello")]


async def test_gives_up_after_max_attempts(store):
    clock = Clock()
    transport = Transport(*[DeliveryError("down")] * 3)
    outbox = Outbox(store, "telegram", transport.send, clock=clock, settle=timedelta(0), max_attempts=3)
    commit(store, "4", "x")
    for _ in range(3):
        await outbox.flush("4")
        clock.now += timedelta(minutes=10)
    assert store.outbox_size() == 0 and transport.delivered == []


async def test_two_senders_never_send_one_row_twice(store):
    transport = Transport()
    a = Outbox(store, "telegram", transport.send, clock=Clock())
    b = Outbox(store, "telegram", transport.send, clock=Clock())
    commit(store, "5", *[f"m{i}" for i in range(20)])
    await asyncio.gather(a.flush("5"), b.flush("5"), a.flush("5"), b.flush("5"))
    await a.flush("5")
    await b.flush("5")
    assert sorted(t for _, t in transport.delivered) == sorted(f"m{i}" for i in range(20))


async def test_an_events_replies_to_another_chat_go_there_in_the_background(store):
    """A handoff event commits replies for the user and for the staff group: each reaches its
    own chat, and the user's do not wait for the staff group's (which Telegram paces)."""
    staff_can_go = asyncio.Event()

    class SlowStaff(Transport):
        async def send(self, chat_id: str, reply: Reply) -> None:
            if chat_id == "-100":
                await staff_can_go.wait()
            await super().send(chat_id, reply)

    transport = SlowStaff()
    outbox = Outbox(store, "telegram", transport.send)
    loaded = store.load("telegram", "7")
    rows = [
        ("telegram", "7", encode_reply(Reply("user 1"))),
        ("telegram", "-100", encode_reply(Reply("card", to="staff"))),
        ("telegram", "7", encode_reply(Reply("user 2"))),
        ("telegram", "-100", encode_reply(Reply("relay", to="staff"))),
    ]
    saved = store.save(loaded, ConversationState(), [], outbox=rows, lease=timedelta(seconds=60))
    assert await outbox.flush_event("7", saved.claimed) == 2
    assert transport.delivered == [("7", "user 1"), ("7", "user 2")]
    staff_can_go.set()
    for _ in range(100):
        if len(transport.delivered) == 4:
            break
        await asyncio.sleep(0.01)
    assert transport.delivered[2:] == [("-100", "card"), ("-100", "relay")]
    assert store.outbox_size() == 0
