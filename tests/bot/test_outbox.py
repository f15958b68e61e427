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


def join_staff(first: Reply, second: Reply) -> Reply | None:
    """Merge rule for these tests: staff lines of one topic, up to 60 characters."""
    if first.to != "staff" or second.to != "staff" or len(first.text) + len(second.text) >= 60:
        return None
    return Reply(f"{first.text}\n{second.text}", to="staff")


def relay(store, chat: str, *texts: str, lease: bool = False) -> list:
    """Commit lines a user's event relays to the staff group "-100"; the rows leased."""
    loaded = store.load("telegram", chat)
    rows = [("telegram", "-100", encode_reply(Reply(t, to="staff"))) for t in texts]
    saved = store.save(loaded, ConversationState(), [], outbox=rows, lease=timedelta(seconds=60) if lease else None)
    return saved.claimed


async def test_replies_that_queue_behind_a_send_are_merged_in_order_per_lane(store):
    """While the staff group's first message is on its way, more lines of two topics queue:
    the next pass sends each topic's lines as one message, in order, none twice."""
    gate = asyncio.Event()

    class Gated(Transport):
        async def send(self, chat_id: str, reply: Reply) -> None:
            await gate.wait()
            await super().send(chat_id, reply)

    def lane(reply: Reply) -> object:
        return reply.text.split(":")[0]

    transport = Gated()
    outbox = Outbox(store, "telegram", transport.send, merge=join_staff, lane=lane)
    first = relay(store, "7", "a:0", lease=True)
    outbox.kick("-100", first)
    await asyncio.sleep(0.05)  # the drain holds "a:0", waiting for the transport
    for i in range(1, 6):
        claimed = relay(store, "7", f"a:{i}", lease=True)
        assert claimed == []  # behind an unsent reply: not leased, the drain picks it up
        outbox.kick("-100")
        relay(store, "8", f"b:{i}")
        outbox.kick("-100")
    gate.set()
    for _ in range(200):
        if store.outbox_size() == 0:
            break
        await asyncio.sleep(0.01)
    texts = [text for _, text in transport.delivered]
    assert texts == ["a:0", "a:1\na:2\na:3\na:4\na:5", "b:1\nb:2\nb:3\nb:4\nb:5"]
    assert store.outbox_size() == 0


async def test_a_merged_message_that_must_wait_is_retried_whole_and_in_place(store):
    clock = Clock()
    transport = Transport(DeliveryError("flood", retry_after=3))
    outbox = Outbox(store, "telegram", transport.send, merge=join_staff, clock=clock, settle=timedelta(0))
    relay(store, "7", "one", "two", "three")
    assert await outbox.flush("-100") == 0
    assert transport.delivered == []
    relay(store, "7", "four")
    clock.now += timedelta(seconds=4)
    assert await outbox.run_once() == 4
    assert transport.delivered == [("-100", "one\ntwo\nthree\nfour")]
    assert store.outbox_size() == 0
