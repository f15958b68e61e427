"""Typed procedures: a region's onboarding steps as data.

A procedure is a list of steps and the branch questions ("choices") that tailor them. The
walkthrough engine in the dialogue core runs any procedure; adding a region is a new YAML
file under ``knowledge/data/procedures``, not new code. Step content can depend on choices
(``when``), a step can be skipped by a choice (``skip_if``), and a step can carry
milestones whose dates start reminders (card pickup deadline, expected approval times).
Facts a step states (phones, URLs, codes) are checked against the manuals like any entry.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Action",
    "Choice",
    "Condition",
    "Delay",
    "Item",
    "Milestone",
    "Option",
    "Procedure",
    "ReminderRule",
    "Step",
    "Text",
    "WalkthroughSettings",
    "as_condition",
    "matches",
]

# A condition: every named choice must have one of the listed values.
Condition = dict[str, tuple[str, ...]]
_Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


def as_condition(value: Any) -> Any:
    """``{card: offline}`` and ``{card: [online, offline]}`` both become tuples of strings
    (also used by the form catalog, whose conditions have the same shape)."""
    if isinstance(value, dict):
        return {k: (str(v),) if isinstance(v, str | int) else tuple(str(x) for x in v) for k, v in value.items()}
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_conditions(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in ("when", "skip_if"):
                if key in value:
                    value = {**value, key: as_condition(value[key])}
        return value


def matches(condition: Condition, answers: dict[str, str]) -> bool:
    """Whether the answers given so far satisfy ``condition`` (unanswered never matches)."""
    return all(answers.get(key) in values for key, values in condition.items())


class Text(_Strict):
    """A user-facing text in Chinese and English; a plain YAML string is Chinese only."""

    zh: str
    en: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"zh": value} if isinstance(value, str) else value

    def get(self, lang: str) -> str:
        return self.en if lang == "en" and self.en else self.zh


class Item(Text):
    """A line of step content, shown only when ``when`` holds."""

    when: Condition = Field(default_factory=dict)


class Option(_Strict):
    """One answer to a choice, picked by button, by words in the text or by an NLU entity."""

    value: _Id
    label: Text
    # Phrases that pick this option in free text; the longest phrase found wins, so
    # "没有卡" beats "有卡".
    says: tuple[str, ...] = ()
    # NLU entity values that pick this option, e.g. {channel: 线下}.
    entity: dict[str, str] = Field(default_factory=dict)
    # A plain yes or no to the question picks the option marked with that reply.
    reply: Literal["affirm", "deny"] | None = None


class Choice(_Strict):
    """A branch question, asked the first time a step needs its answer."""

    id: _Id
    title: Text
    ask: Text
    options: Annotated[tuple[Option, ...], Field(min_length=2)]
    when: Condition = Field(default_factory=dict)
    # What a yes/no choice is about (卡, 海关编码): a sentence that names it answers with the
    # option whose ``reply`` is "deny" when it negates (卡还没办呢), else "affirm" when it says
    # it is had or done (编码早就有了).
    topic: tuple[str, ...] = ()

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)


class Delay(_Strict):
    """``days`` (calendar) or ``working_days`` (Monday to Friday) after a date.

    Working days skip weekends only: the manuals give no holiday calendar, and a reminder
    a day early around a public holiday is harmless.
    """

    days: int | None = Field(default=None, ge=0)
    working_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_delay(self) -> Delay:
        if (self.days is None) == (self.working_days is None):
            raise ValueError("give exactly one of days / working_days")
        return self

    def after(self, start: date) -> date:
        if self.days is not None:
            return start + timedelta(days=self.days)
        day, left = start, self.working_days or 0
        while left:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day


class ReminderRule(Delay):
    """A reminder a delay after a milestone's date."""

    text: Text


class Milestone(_Strict):
    """Something the user reports during a step ("申请单已核验通过") that starts reminders."""

    id: _Id
    label: Text
    confirm: Text
    when: Condition = Field(default_factory=dict)
    # The date the confirmation calls {deadline}; default: the first reminder's date.
    deadline: Delay | None = None
    reminders: tuple[ReminderRule, ...] = ()


class Action(_Strict):
    """One thing done within a step, in the order the manual does it.

    "X弄好了，然后呢" is matched against these: ``says`` are words for having done it,
    ``after`` words for what it follows ("海关企业资质备案通过后"); ``see`` is the entry
    that tells how. The step's ``do`` lines say what to do; actions say in which order.
    """

    id: _Id
    name: Text
    see: str
    says: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    when: Condition = Field(default_factory=dict)


class Step(_Strict):
    """One step: what to do, where, what to bring, pitfalls, whom to call, sources."""

    id: _Id
    title: Text
    # What users call the step ("办卡" for 电子口岸制卡): "X做完了", "X怎么办" name it so.
    says: tuple[str, ...] = ()
    section: Annotated[str, Field(min_length=1)]
    # Choices answered before the step is shown (they may also decide ``skip_if``).
    asks: tuple[str, ...] = ()
    # When this holds the step does not apply and is passed over with ``skip_reason``.
    skip_if: Condition = Field(default_factory=dict)
    skip_reason: Text | None = None
    # Skipping it by hand asks why, and warns with ``skip_warning``.
    skip_matters: bool = False
    skip_warning: Text | None = None
    do: tuple[Item, ...] = ()
    where: tuple[Item, ...] = ()
    bring: tuple[Item, ...] = ()
    pitfalls: tuple[Item, ...] = ()
    wait: tuple[Item, ...] = ()
    # The card the step is done with (法人卡, 电子口岸卡 ...), where it needs one: the card
    # agent's status is shown with the step and card changes are confirmed or warned about.
    card: tuple[Item, ...] = ()
    # Knowledge entries: hotlines whose phones are shown, entries cited as sources.
    call: tuple[str, ...] = ()
    see: tuple[str, ...] = ()
    policy: str | None = None
    milestones: tuple[Milestone, ...] = ()
    actions: tuple[Action, ...] = ()


class Procedure(_Strict):
    """A region's whole onboarding procedure."""

    region: str
    manual: str
    title: Text
    # The entry that sums the whole procedure up (the manual's own overview), if there is one.
    overview: str | None = None
    choices: tuple[Choice, ...] = ()
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]

    def choice(self, choice_id: str) -> Choice:
        return next(c for c in self.choices if c.id == choice_id)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)

    def problems(self, known_entries: set[str], known_policies: set[str]) -> list[str]:
        """References that point nowhere, named so a data error says where it is."""
        out: list[str] = []
        choice_ids = {c.id for c in self.choices}
        if len(choice_ids) != len(self.choices):
            out.append("duplicate choice id")
        if len({s.id for s in self.steps}) != len(self.steps):
            out.append("duplicate step id")
        values = {c.id: {o.value for o in c.options} for c in self.choices}

        def check_condition(where: str, cond: Condition) -> None:
            for key, wanted in cond.items():
                if key not in values:
                    out.append(f"{where}: unknown choice {key!r}")
                else:
                    out.extend(f"{where}: choice {key} has no option {v!r}" for v in wanted if v not in values[key])

        if self.overview is not None and self.overview not in known_entries:
            out.append(f"overview: unknown entry {self.overview!r}")
        for choice in self.choices:
            check_condition(f"choice {choice.id}: when", choice.when)
        for step in self.steps:
            where = f"step {step.id}"
            out.extend(f"{where}: asks unknown choice {a!r}" for a in step.asks if a not in choice_ids)
            check_condition(f"{where}: skip_if", step.skip_if)
            if step.skip_if and step.skip_reason is None:
                out.append(f"{where}: skip_if needs a skip_reason")
            for field in ("do", "where", "bring", "pitfalls", "wait", "card"):
                for item in getattr(step, field):
                    check_condition(f"{where}: {field}", item.when)
            for ms in step.milestones:
                check_condition(f"{where}: milestone {ms.id}", ms.when)
            if len({a.id for a in step.actions}) != len(step.actions):
                out.append(f"{where}: duplicate action id")
            for action in step.actions:
                check_condition(f"{where}: action {action.id}", action.when)
                if action.see not in known_entries:
                    out.append(f"{where}: action {action.id}: unknown entry {action.see!r}")
            out.extend(f"{where}: unknown entry {e!r}" for e in (*step.call, *step.see) if e not in known_entries)
            if step.policy and step.policy not in known_policies:
                out.append(f"{where}: unknown policy note {step.policy!r}")
        return out


class WalkthroughSettings(_Strict):
    """Settings shared by every procedure (``common.yaml``, key ``walkthrough``)."""

    idle_nudge_days: int = Field(default=3, ge=1)
    # Words that mark a message as changing an earlier answer ("其实我们是线下办卡").
    change_cues: tuple[str, ...] = ()
    # Of those, the words that say an earlier answer was wrong (其实, 说错了).
    correction_cues: tuple[str, ...] = ()
    # At the company-name prompt, words that put the name off ("先不写公司名了"): as 先不填.
    name_later: tuple[str, ...] = ()
    # Words that name both options of a choice at once (进出口 has 出口 in it, not 进口): taken
    # out before a statement's options are read.
    both_ways: tuple[str, ...] = ()
    skip_reasons: tuple[Text, ...] = ()
    # A reply to "为哪家企业办理" with one of these is a company name (西安某某贸易有限公司) ...
    company_marks: tuple[str, ...] = ()
    # ... unless it has one of these: a sentence ("我们还没有卡") or a command ("切换到乙公司").
    sentence_words: tuple[str, ...] = ()
    name_leads: tuple[str, ...] = ()
    # A request to start or restart with one of these is for a new company ("给另一家公司办").
    another_company: tuple[str, ...] = ()
    # Words that make a run ending in 公司 a description, not a name ("一家做母婴的小公司").
    not_names: tuple[str, ...] = ()
    # A sentence about a yes/no choice's topic says "no" with one of these (卡还没办呢)...
    negations: tuple[str, ...] = ()
    # ... and "yes" with one of these (海关编码我们早就有了).
    affirmations: tuple[str, ...] = ()
    # Phrases with a negation in them that negate nothing (不好意思, 不对 as "I was wrong").
    not_negations: tuple[str, ...] = ()
    # Words that say a step's result is held already ("海关注册登记我们几年前就有了"): done.
    held: tuple[str, ...] = ()
