"""Conversation tests kept as data (tests/data/conversations/*.yaml), run two ways.

In the manner of Rasa's test stories, a conversation is a list of turns: what the user
types (``user``), the button they press (``press``, by its label), a command
(``command``), or ``later: {days: N}`` -- the assistant is restarted N days later (a new
process, or a new store and assistant over the same database) and its reminder pass runs.
Each turn lists what the bot's replies must contain (``bot``), the buttons that must be
offered (``buttons``) and what must not appear (``absent``); and, in words that do not depend
on the bot's wording (``expect``), what the turn must leave the conversation in: the
walkthrough's region (``walkthrough``), the active company's name (``company``), branch
answers given so far (``answers``, a subset), the open step (``step``), steps done or skipped
(``done``, ``skipped``, subsets), whether it finished (``finished``), and ``question: true``
for a turn answered as a question from the knowledge base without choosing anything.

The held-out conversations (``heldout/``) are measured (``bench/walkthroughs.py``) turn by
turn, not looked at one by one.

``CoreRunner`` drives the assistant in process with a clock it controls; ``run_cli`` feeds
the same turns to ``portpal chat`` under libfaketime. Both check the same expectations.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.assistant import Assistant
from bot.core.dialogue import Outcome
from bot.core.events import ButtonPress, Command, Event, TextMessage
from bot.core.replies import Button, Reply
from bot.core.state import ConversationState
from bot.reminders import ReminderScheduler
from bot.store import Store
from knowledge.index import Retriever
from nlu.interpreter import Interpreter
from tests.auxil import database

CONVERSATIONS_DIR = Path(__file__).resolve().parent.parent / "data" / "conversations"
HELD_OUT_DIR = CONVERSATIONS_DIR / "heldout"
# Conversations in users' words that the walkthrough is tuned on (measured, not yet all passing).
TUNING_DIR = CONVERSATIONS_DIR / "tuning"
EXPECT_KEYS = frozenset({"walkthrough", "company", "answers", "step", "done", "skipped", "finished", "question"})


@dataclass(frozen=True)
class Turn:
    kind: str  # user | press | command | later
    value: str
    days: int = 0
    bot: tuple[str, ...] = ()
    buttons: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def line(self) -> str:
        """What a terminal user types for this turn."""
        return self.value


@dataclass(frozen=True)
class Conversation:
    name: str
    file: str
    start: datetime
    turns: tuple[Turn, ...]

    @property
    def chat_id(self) -> str:
        return "t-" + str(abs(hash(self.name)) % 10**8)


def _turn(raw: dict[str, Any]) -> Turn:
    kinds = [k for k in ("user", "press", "command", "later") if k in raw]
    assert len(kinds) == 1, f"a turn needs exactly one of user/press/command/later: {raw}"
    kind = kinds[0]
    days = int(raw["later"].get("days", 0)) if kind == "later" else 0
    value = "" if kind == "later" else raw[kind]
    assert isinstance(value, str), f"quote the {kind} text of turn {raw}"

    def as_tuple(key: str) -> tuple[str, ...]:
        items = raw.get(key) or ()
        # YAML reads 0756 as the octal number 494 and 9610 as a number: quote them.
        bad = [x for x in items if not isinstance(x, str)]
        assert not bad, f"quote {bad} in {key} of turn {raw}"
        return tuple(items)

    expect = dict(raw.get("expect") or {})
    unknown = set(expect) - EXPECT_KEYS
    assert not unknown, f"unknown expect keys {unknown} in turn {raw}"
    return Turn(kind, value, days, as_tuple("bot"), as_tuple("buttons"), as_tuple("absent"), expect)


def load_conversations(directory: Path = CONVERSATIONS_DIR) -> list[Conversation]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for conv in raw["conversations"]:
            start = datetime.fromisoformat(str(conv.get("start", "2026-11-23T09:00:00+08:00"))).astimezone(UTC)
            turns = tuple(_turn(t) for t in conv["turns"])
            out.append(Conversation(conv["name"], path.name, start, turns))
    return out


def expectation_problems(
    expect: dict[str, Any], state: ConversationState, outcome: Outcome | None, answers_before: dict[str, str]
) -> list[str]:
    """What of ``expect`` the state after a turn (and its outcome) does not hold."""
    problems: list[str] = []
    company = state.active_company
    progress = company.progress.get(state.walkthrough) if company and state.walkthrough else None
    answers = dict(progress.answers) if progress else {}
    if "walkthrough" in expect and state.walkthrough != expect["walkthrough"]:
        problems.append(f"walkthrough {state.walkthrough!r}, expected {expect['walkthrough']!r}")
    if "company" in expect and (company is None or company.name != expect["company"]):
        problems.append(f"company {company.name if company else None!r}, expected {expect['company']!r}")
    for choice, value in (expect.get("answers") or {}).items():
        if answers.get(choice) != str(value):
            problems.append(f"answer {choice}={answers.get(choice)!r}, expected {value!r}")
    if "step" in expect and (progress is None or progress.current != expect["step"]):
        problems.append(f"step {progress.current if progress else None!r}, expected {expect['step']!r}")
    for step in expect.get("done") or ():
        if progress is None or step not in progress.done:
            problems.append(f"step {step} not done")
    for step in expect.get("skipped") or ():
        if progress is None or step not in progress.skipped:
            problems.append(f"step {step} not skipped")
    if "finished" in expect and bool(progress and progress.finished) != bool(expect["finished"]):
        problems.append(f"finished is {bool(progress and progress.finished)}, expected {expect['finished']}")
    if expect.get("question"):
        answered = outcome is not None and outcome.answer is not None and not outcome.answer.fallback
        if not answered:
            problems.append("not answered as a question")
        if answers != answers_before:
            problems.append(f"the question chose {set(answers.items()) - set(answers_before.items())}")
    return problems


def check(turn: Turn, text: str, offered: list[str], where: str) -> None:
    for expected in turn.bot:
        assert expected in text, f"{where}: expected {expected!r} in the reply:\n{text}"
    for label in turn.buttons:
        assert label in offered, f"{where}: expected button {label!r}, offered {offered}\n{text}"
    for unwanted in turn.absent:
        assert unwanted not in text, f"{where}: {unwanted!r} must not appear in:\n{text}"


@dataclass
class CoreRunner:
    """The assistant in process: real store (SQLite or PostgreSQL), a real NLU engine."""

    url: str
    interpreter: Interpreter
    retriever: Retriever
    channel: str = "test"
    # Strict: the first unmet expectation fails the test. Otherwise every turn is run and
    # judged, and ``results`` says which passed (the held-out measurement).
    strict: bool = True
    # (choice, option) pairs and milestones seen in stored states: branch coverage.
    answers: set[tuple[str, str, str]] = field(default_factory=set)
    milestones: set[tuple[str, str]] = field(default_factory=set)
    results: list[tuple[str, int, list[str]]] = field(default_factory=list)

    def _open(self) -> Assistant:
        return Assistant(Store(self.url), self.interpreter, self.retriever)

    async def run(self, conv: Conversation) -> None:
        assistant = self._open()
        clock = conv.start
        buttons: tuple[Button, ...] = ()
        for i, turn in enumerate(conv.turns, 1):
            where = f"{conv.file} / {conv.name} / turn {i} ({turn.kind} {turn.value or turn.days})"
            replies: list[Reply] = []
            outcome: Outcome | None = None
            before = self._answers(assistant, conv)
            if turn.kind == "later":
                assistant.store.close()
                assistant = self._open()  # a restart: nothing survives but the database
                buttons = ()
                clock = clock + timedelta(days=turn.days)

                async def collect(channel: str, chat_id: str, out: Outcome, _r: list[Reply] = replies) -> None:
                    if chat_id == conv.chat_id:
                        _r.extend(out.replies)

                scheduler = ReminderScheduler(assistant, collect, channels=[self.channel], clock=lambda t=clock: t)
                await scheduler.run_due()
            else:
                event: Event
                if turn.kind == "press":
                    match = [b for b in buttons if b.label == turn.value]
                    if not match and not self.strict:
                        # Measured, not asserted: the button is not there (an earlier turn went
                        # wrong); the turn fails and the conversation goes on.
                        self.results.append((conv.name, i, [f"the button {turn.value!r} is not offered"]))
                        continue
                    assert match, f"{where}: no button {turn.value!r} among {[b.label for b in buttons]}"
                    event = ButtonPress(match[-1].payload, at=clock)
                elif turn.kind == "command":
                    cmd = Command.parse(turn.value)
                    event = Command(cmd.name, cmd.args, at=clock)
                else:
                    event = TextMessage(turn.value, at=clock)
                outcome = await assistant.handle(self.channel, conv.chat_id, event)
                replies = outcome.replies
            with_buttons = [r for r in replies if r.buttons]
            if with_buttons:
                buttons = with_buttons[-1].buttons
            text = "\n".join(r.text for r in replies)
            state = assistant.store.load(self.channel, conv.chat_id).state
            problems = expectation_problems(turn.expect, state, outcome, before)
            if self.strict:
                check(turn, text, [b.label for r in replies for b in r.buttons], where)
                assert not problems, f"{where}: " + "; ".join(problems) + f"\n{text}"
            else:
                self.results.append((conv.name, i, problems))
            self._record(assistant, conv)
        assistant.store.close()

    def _answers(self, assistant: Assistant, conv: Conversation) -> dict[str, str]:
        state = assistant.store.load(self.channel, conv.chat_id).state
        company = state.active_company
        progress = company.progress.get(state.walkthrough) if company and state.walkthrough else None
        return dict(progress.answers) if progress else {}

    def _record(self, assistant: Assistant, conv: Conversation) -> None:
        state = assistant.store.load(self.channel, conv.chat_id).state
        for company in state.companies:
            for region, prog in company.progress.items():
                self.answers |= {(region, c, v) for c, v in prog.answers.items()}
                self.milestones |= {(region, m) for m in prog.milestones}


def _segments(conv: Conversation) -> Iterator[tuple[Turn | None, list[Turn]]]:
    """Turns split at restarts: (the ``later`` turn or None, the turns typed after it)."""
    head: Turn | None = None
    body: list[Turn] = []
    for turn in conv.turns:
        if turn.kind == "later":
            if head is not None or body:
                yield head, body
            head, body = turn, []
        else:
            body.append(turn)
    yield head, body


def run_cli(conv: Conversation, portpal: Path, data_dir: Path, env_extra: dict[str, str] | None = None) -> None:
    """Feed the conversation to ``portpal chat`` (one process per segment, under faketime)."""
    env = database.env_for(data_dir, PORTPAL_NLU="lexical", TZ="UTC", **(env_extra or {}))
    clock = conv.start
    for n, (head, body) in enumerate(_segments(conv), 1):
        if head is not None:
            clock += timedelta(days=head.days)
        stdin = "".join(t.line + "\n" for t in body)
        stamp = clock.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        cmd = ["faketime", "-f", f"@{stamp}", str(portpal), "chat", "--chat-id", conv.chat_id]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=180, env=env)
        where = f"{conv.file} / {conv.name} / process {n} at {stamp}"
        assert proc.returncode == 0, f"{where}: exit {proc.returncode}\n{proc.stderr}"
        # The piped console echoes each message as "> message": cut the output there.
        chunks = ("\n" + proc.stdout).split("\n> ")
        assert len(chunks) == len(body) + 1, f"{where}: {len(chunks) - 1} echoed messages for {len(body)} turns"
        turns = [head, *body] if head is not None else [None, *body]
        for turn, chunk in zip(turns, chunks, strict=True):
            if turn is None:
                continue
            # Offered buttons print as "  N. label".
            offered = re.findall(r"^  \d+\. (.+)$", chunk, flags=re.MULTILINE)
            check(turn, chunk, offered, f"{where} / {turn.kind} {turn.value or turn.days}")
