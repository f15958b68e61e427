"""Conversation state: everything the core remembers between events.

It is a plain pydantic model serialised to JSON in the database after every event, so any
bot process can pick up any conversation. Later features (form fields, handoff) add fields
here with defaults, so stored states stay readable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from forms.masking import mask_text

__all__ = [
    "Awaiting",
    "CardStatus",
    "Company",
    "ConversationState",
    "FormSession",
    "Handoff",
    "Progress",
    "ReminderSpec",
    "Turn",
]

HISTORY_LIMIT = 20


class Turn(BaseModel):
    role: Literal["user", "bot"]
    text: str


class Progress(BaseModel):
    """One company's progress through one region's procedure."""

    answers: dict[str, str] = Field(default_factory=dict)  # choice id -> option value
    done: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)  # step id -> reason given ("" if none)
    # Skipped because an answer makes them not apply (已有海关编码): they come back when it changes.
    auto_skipped: list[str] = Field(default_factory=list)
    current: str | None = None
    milestones: dict[str, datetime] = Field(default_factory=dict)  # milestone id -> when reported
    finished: bool = False
    updated_at: datetime | None = None


class Company(BaseModel):
    """A company the user handles; progress is kept per region, its profile (the form
    fields collected so far, by field id) once for all documents."""

    name: str
    progress: dict[str, Progress] = Field(default_factory=dict)
    profile: dict[str, str] = Field(default_factory=dict)
    skipped: list[str] = Field(default_factory=list)  # optional fields the user chose to leave blank
    placeholder: bool = False  # named "我的企业" for now: the company name field renames it


class FormSession(BaseModel):
    """Documents being prepared: which, for which region, and where the filling stands."""

    forms: list[str]
    region: str
    stage: Literal["filling", "confirm"] = "filling"
    asking: str | None = None  # field id
    skipped: list[str] = Field(default_factory=list)  # optional fields the user skipped
    step: str | None = None  # the walkthrough step that asked for the documents


class Awaiting(BaseModel):
    """What the bot asked and is waiting for; ``ref`` names the choice, step or region."""

    kind: Literal["choice", "company_name", "skip_reason", "confirm_restart", "confirm_region", "form_field", "region"]
    ref: str = ""


class ReminderSpec(BaseModel):
    """A reminder the conversation wants; the store mirrors these into its reminder table."""

    key: str
    due: datetime
    kind: Literal["milestone", "idle", "handoff", "skipped"]
    company: int = 0
    region: str = ""
    step: str = ""
    milestone: str = ""
    rule: int = 0


class Handoff(BaseModel):
    """The conversation handed to help-desk staff (``number``: the conversation's 1st, 2nd...).

    ``waiting``: for someone to take it; ``held``: a staff member has it; ``message``: nobody
    could answer (outside service hours, or no one in time): the user leaves messages that
    staff find when they return. ``closed`` only in ``ConversationState.last_handoff``.
    """

    number: int
    reason: Literal["asked", "fallback"]
    status: Literal["waiting", "held", "message", "closed"] = "waiting"
    opened_at: datetime
    waiting_since: datetime  # opened, or released back to the queue
    claimed_at: datetime | None = None
    answered_at: datetime | None = None  # the first staff message the user got
    staff_id: str | None = None
    staff_name: str | None = None
    nudged: bool = False
    gave_up: bool = False
    acknowledged: bool = False  # "message" mode: the user was told their message is kept
    message_since: datetime | None = None  # when it became "message" (for the opening reminder)
    hours_reminded: bool = False  # staff were reminded of it when service hours began
    notes: list[str] = Field(default_factory=list)  # staff's internal notes (masked)
    closed_at: datetime | None = None
    resolution: str | None = None


class CardStatus(BaseModel):
    """What the chat's paired card agent last said: its PC, whether it is reporting, the
    smart-card service and the readers (each with its card, if any)."""

    agent: str
    paired_at: datetime
    online: bool = True
    seen_at: datetime | None = None
    service: bool = True
    error: str = ""
    readers: list[tuple[str, bool, str]] = Field(default_factory=list)  # (name, card present, ATR)
    offline_told: bool = False  # the user was told it went offline (so is told when it is back)


class ConversationState(BaseModel):
    region: str | None = None
    lang: Literal["zh", "en"] = "zh"
    fallback_streak: int = 0
    # A question answered for both regions, re-answered once the user picks one.
    pending_question: str | None = None
    history: list[Turn] = Field(default_factory=list)
    # Walkthroughs: the companies handled, the active one, and the region being walked
    # through (None: plain question answering).
    companies: list[Company] = Field(default_factory=list)
    company: int | None = None
    walkthrough: str | None = None
    # What the user said with their request to start, before the company's progress existed
    # ("法人卡之前就办过了"): read for the choices it settles once the walkthrough opens.
    stated: list[str] = Field(default_factory=list)
    # The walkthrough opened with "我的企业" for now and invited the name: the next message may
    # be the name alone ("秦味坊"), no mark needed. Cleared by that message.
    name_invited: bool = False
    # The step a walkthrough started from a "what next" answer begins at (the earlier ones done).
    start_at: str = ""
    awaiting: Awaiting | None = None
    reminders_enabled: bool = True
    reminders: list[ReminderSpec] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list)
    # Form filling: the session under way, and the last documents made (to remake them
    # after a correction).
    form: FormSession | None = None
    last_forms: list[str] = Field(default_factory=list)
    # Help-desk handoff: the one under way, and the last one closed (kept for the record).
    handoff: Handoff | None = None
    last_handoff: Handoff | None = None
    # The paired card agent's last report (None: no agent paired).
    card: CardStatus | None = None

    def remember(self, role: Literal["user", "bot"], text: str) -> None:
        # The history is shown to help-desk staff: ID and phone numbers never enter it.
        self.history.append(Turn(role=role, text=mask_text(text[:2000])))
        del self.history[:-HISTORY_LIMIT]

    @property
    def active_company(self) -> Company | None:
        return self.companies[self.company] if self.company is not None else None

    def progress(self) -> Progress | None:
        """The active company's progress in the walkthrough's region."""
        company = self.active_company
        if company is None or self.walkthrough is None:
            return None
        return company.progress.setdefault(self.walkthrough, Progress())
