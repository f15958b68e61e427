"""Hostile and odd input through the dialogue core, property-based (hypothesis): any
Unicode, control characters, emoji, mixed scripts, long texts, forged and stale button
payloads, commands with junk arguments, card and staff events out of place, in random
orders. Each event must give a reply a user can read (or, for events the user did not
send, none), never an exception, and a state that survives the store's JSON round trip.
Four properties at 2,500 examples each: 10,000 cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bot.core.dialogue import Dialogue
from bot.core.events import (
    AgentReport,
    ButtonPress,
    CardChange,
    CardReader,
    Command,
    FileMessage,
    StaffMessage,
    TextMessage,
    Timer,
)
from bot.core.messages import default_messages
from bot.core.state import ConversationState
from knowledge.index import default_retriever
from nlu.lexical import default_lexical

DIALOGUE = Dialogue(default_retriever(), default_messages())
LEXICAL = default_lexical()
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
EXAMPLES = settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words of the domain mixed with anything: the engine's paths are taken, not just its fallback.
WORDS = ["宝鸡", "办卡", "哪里", "法人卡", "陕西", "珠海", "转人工", "下一步", "跳过", "上一步", "我们有卡",
         "重新开始", "我做到哪了", "帮我生成授权委托书", "统一社会信用代码", "91610000MA6TG1234X", "13800138000",
         "我的卡插好了吗", "is my card inserted", "hello", "MQ", "Web", "9610", "先不填", "取消", "是", "不"]  # fmt: skip
texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
    st.lists(st.sampled_from(WORDS) | st.text(max_size=5), max_size=8).map("".join),
    st.sampled_from(["", " ", "\n\n", "\u0000", "\u202e陕西", "🙂" * 300, "a" * 4096, "办卡" * 2000]),
)
PREFIXES = ["wt:", "fm:", "region:", "wt:choice:", "wt:choice:has_card:", "wt:ms:", "wt:company:", "fm:field:",
            "fm:step:shaanxi:", "wt:resume:", "wt:skipwhy:", "wt:restart:", "human", "help", ""]  # fmt: skip
payloads = st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(max_size=40))
COMMANDS = ["start", "help", "walkthrough", "progress", "company", "forms", "profile", "reminders", "human",
            "cancel", "pair", "unpair", "take", "close", "reveal", "x" * 100, ""]  # fmt: skip
commands = st.builds(lambda n, a: Command(n, a, at=T0), st.sampled_from(COMMANDS), st.text(max_size=60))
files = st.builds(
    lambda kind, name, size: FileMessage(kind, "file-ref", name, "application/octet-stream", size, at=T0),
    st.sampled_from(["document", "photo"]), st.text(max_size=80), st.integers(0, 2**40),
)  # fmt: skip
KINDS = ["service_up", "service_down", "reader_added", "reader_removed", "card_inserted", "card_removed"]
reports = st.builds(
    lambda kind, name, changes, readers: AgentReport(
        kind, name, readers=tuple(CardReader(r, c, "3B") for r, c in readers),
        changes=tuple(CardChange(k, r, "", T0) for k, r in changes), at=T0,
    ),
    st.sampled_from(["paired", "report", "offline", "unpaired"]), st.text(max_size=20),
    st.lists(st.tuples(st.sampled_from(KINDS), st.text(max_size=20)), max_size=4),
    st.lists(st.tuples(st.text(max_size=20), st.booleans()), max_size=3),
)  # fmt: skip
staff = st.builds(
    lambda cmd, text: StaffMessage("9", "客服", text=text, command=cmd, args=text, at=T0),
    st.sampled_from(["", "take", "release", "close", "note", "kb", "reveal", "bogus"]), st.text(max_size=60),
)  # fmt: skip
timers = st.builds(lambda k: Timer(k, at=T0), st.sampled_from(["", "handoff:1:nudge", "wt:idle", "x"]) | st.text())


def handle(state: ConversationState, event):
    understanding = LEXICAL.parse_sync(event.text) if isinstance(event, TextMessage) and event.text.strip() else None
    outcome = DIALOGUE.handle(state, event, understanding)
    # The store keeps the state as JSON: whatever happened must survive the round trip.
    again = ConversationState.model_validate_json(outcome.state.model_dump_json())
    assert again == outcome.state
    return outcome


def readable(outcome) -> bool:
    return bool(outcome.replies) and all(r.text.strip() for r in outcome.replies if r.to == "user")


@EXAMPLES
@given(texts)
def test_any_text_gets_a_readable_reply(text):
    assert readable(handle(ConversationState(), TextMessage(text, at=T0)))


@EXAMPLES
@given(payloads)
def test_any_button_payload_forged_or_stale_gets_a_readable_reply(payload):
    assert readable(handle(ConversationState(), ButtonPress(payload, at=T0)))


@EXAMPLES
@given(commands | files)
def test_commands_with_junk_and_odd_files_get_a_readable_reply(event):
    assert readable(handle(ConversationState(), event))


class Conversation(RuleBasedStateMachine):
    """Random sequences of everything, one conversation: no event may break the next."""

    @initialize()
    def begin(self) -> None:
        self.state = ConversationState()
        self.at = T0

    def step(self, event):
        self.at += timedelta(minutes=7)
        outcome = handle(self.state, event)
        self.state = outcome.state
        return outcome

    @rule(text=texts)
    def say(self, text):
        assert readable(self.step(TextMessage(text, at=self.at)))

    @rule(label=st.integers(0, 20), payload=payloads)
    def press(self, label, payload):
        # Mostly a button the bot really showed last; sometimes a forged one.
        shown = [b.payload for turn in [getattr(self, "last", None)] if turn for r in turn.replies for b in r.buttons]
        event = ButtonPress(shown[label % len(shown)] if shown and label < 15 else payload, at=self.at)
        self.last = self.step(event)
        assert readable(self.last)

    @rule(event=commands | files)
    def command(self, event):
        self.last = self.step(event)
        assert readable(self.last)

    @rule(event=reports | staff | timers)
    def other(self, event):
        self.last = self.step(event)  # not the user's: a reply is not required

    @invariant()
    def history_is_bounded(self) -> None:
        if hasattr(self, "state"):
            assert len(self.state.history) <= 20


Conversation.TestCase.settings = settings(
    max_examples=250, stateful_step_count=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_conversations_never_break = Conversation.TestCase
