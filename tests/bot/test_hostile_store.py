"""Hostile input through the assistant and a real store (the run's SQLite or PostgreSQL),
property-based: random events for a few chats, with conversations deleted under them
(/deletedata, `portpal privacy delete`), updates redelivered, staff messages, card-agent
reports and reminders arriving for chats that were deleted or never existed. No event may
raise; each user event gets a readable reply; a redelivered update is not applied twice;
every stored conversation loads. tests/bot/core/test_hostile_input.py does the same for the
dialogue core alone, 10,000 cases."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from bot.assistant import Assistant
from bot.core.dialogue import Outcome
from bot.core.events import AgentReport, ButtonPress, Command, Event, StaffMessage, TextMessage, Timer
from bot.core.handoff import Desk, ServiceHours
from bot.privacy import Privacy
from bot.store import Store
from nlu.lexical import LexicalInterpreter
from tests.bot.core.test_hostile_input import commands, payloads, texts

CHATS = st.integers(0, 2)
RUNS = itertools.count()


def readable(outcome: Outcome) -> bool:
    return bool(outcome.replies) and all(r.text.strip() for r in outcome.replies if r.to == "user")


def machine(store: Store, lexical: LexicalInterpreter, documents: Path) -> type[RuleBasedStateMachine]:
    desk = Desk(enabled=True, hours=ServiceHours.parse("always"))

    class Chats(RuleBasedStateMachine):
        @initialize()
        def begin(self) -> None:
            self.loop = asyncio.new_event_loop()
            self.assistant = Assistant(
                store, lexical, documents_dir=documents, outbox_channels={"telegram"}, desk=desk,
                staff_route=("telegram", "-100"), user_rate=0,
            )  # fmt: skip
            self.run = next(RUNS)  # each example its own chats: examples do not depend on each other
            self.updates = itertools.count()
            self.shown: dict[int, list[str]] = {}
            self.last: tuple[int, Event, list[str]] | None = None

        def teardown(self) -> None:
            if hasattr(self, "loop"):
                self.loop.close()

        def chat(self, n: int) -> str:
            return f"{self.run}-{n}"

        def handle(self, n: int, event: Event, user: bool = True) -> Outcome:
            keys = [f"telegram:update:{self.run}:{next(self.updates)}"]
            outcome = self.loop.run_until_complete(self.assistant.handle("telegram", self.chat(n), event, keys=keys))
            self.shown[n] = [b.payload for r in outcome.replies for b in r.buttons] or self.shown.get(n, [])
            self.last = (n, event, keys) if user else None
            return outcome

        @rule(n=CHATS, text=texts)
        def say(self, n: int, text: str) -> None:
            assert readable(self.handle(n, TextMessage(text)))

        @rule(n=CHATS, pick=st.integers(0, 20), payload=payloads)
        def press(self, n: int, pick: int, payload: str) -> None:
            # Mostly a button this chat was shown (perhaps before its data was deleted).
            shown = self.shown.get(n, [])
            assert readable(self.handle(n, ButtonPress(shown[pick % len(shown)] if shown and pick < 15 else payload)))

        @rule(n=CHATS, event=commands)
        def command(self, n: int, event: Command) -> None:
            assert readable(self.handle(n, event))

        @rule(n=CHATS, confirm=st.booleans())
        def delete_in_chat(self, n: int, confirm: bool) -> None:
            assert readable(self.handle(n, Command("deletedata")))
            done = self.handle(n, ButtonPress("privacy:delete" if confirm else "privacy:keep"))
            assert readable(done)
            if confirm:
                assert [m.text for m in store.transcript("telegram", self.chat(n))] == [done.replies[0].text]

        @rule(n=CHATS)
        def delete_by_operator(self, n: int) -> None:
            Privacy(store, documents).delete("telegram", self.chat(n))
            self.last = None  # its update keys went with it
            assert store.transcript("telegram", self.chat(n)) == []

        @rule()
        def redeliver(self) -> None:
            """Telegram posts an update again: it is not applied twice."""
            if self.last is None:
                return
            n, event, keys = self.last
            before = store.transcript("telegram", self.chat(n))
            again = self.loop.run_until_complete(self.assistant.handle("telegram", self.chat(n), event, keys=keys))
            assert again.notes.get("duplicate") and again.replies == []
            assert store.transcript("telegram", self.chat(n)) == before

        @rule(n=st.integers(0, 4), kind=st.sampled_from(["staff", "close", "timer", "report", "offline"]))
        def not_from_the_user(self, n: int, kind: str) -> None:
            """Events the user did not send, for a chat that may be deleted or unknown (3, 4)."""
            event: Event = {
                "staff": StaffMessage("9", "客服", text="您好"),
                "close": StaffMessage("9", "客服", command="close", args="已解决"),
                "timer": Timer("handoff:1:nudge"),
                "report": AgentReport("report", "财务室电脑"),
                "offline": AgentReport("offline", "财务室电脑"),
            }[kind]
            self.handle(n, event, user=False)

        @invariant()
        def stored_conversations_load(self) -> None:
            if hasattr(self, "run"):
                for n in range(5):
                    store.load("telegram", self.chat(n))

    return Chats


def test_random_events_with_deletions_and_redeliveries_never_break(db_url, lexical, tmp_path):
    store = Store(db_url)
    try:
        run_state_machine_as_test(
            machine(store, lexical, tmp_path / "documents"),
            settings=settings(
                max_examples=200, stateful_step_count=15, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )  # fmt: skip
    finally:
        store.close()
