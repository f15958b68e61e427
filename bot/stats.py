"""``portpal stats``: what the bot did, for the people who keep its knowledge growing.

Read from what is stored anyway (transcripts, conversation states, handoff records), so
nothing extra is written per message: questions asked and answered, the questions the
manuals did not answer (with their text: the knowledge base's to-do list), how far
companies got in each walkthrough step, and the help desk's handoffs.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from bot.core.messages import default_messages
from bot.core.state import ConversationState
from bot.store import Conversation, HandoffRecord, MessageRecord, Store
from knowledge.loader import KnowledgeBase

__all__ = ["Stats", "collect"]


def _fallback_openings() -> tuple[str, ...]:
    """How a "not in the manuals" reply begins, in each language."""
    msg = default_messages()
    keys = ("fallback", "fallback_again", "fallback_handoff")
    return tuple(msg.get(k, lang).splitlines()[0][:20] for k in keys for lang in ("zh", "en"))


@dataclass
class StepFigures:
    reached: int = 0  # companies whose walkthrough got to this step
    done: int = 0
    skipped: int = 0
    current: int = 0  # companies at this step now


@dataclass
class Stats:
    since: datetime | None
    conversations: int = 0
    questions: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)
    steps: dict[str, dict[str, StepFigures]] = field(default_factory=dict)  # region -> step id -> figures
    finished: Counter[str] = field(default_factory=Counter)  # region -> companies done
    handoffs: Counter[str] = field(default_factory=Counter)  # "reason/status" -> count

    @property
    def answered(self) -> int:
        return self.questions - sum(self.unanswered.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "conversations": self.conversations,
            "questions": self.questions,
            "answered": self.answered,
            "unanswered": [{"text": t, "times": n} for t, n in self.unanswered.most_common()],
            "walkthrough": {
                region: {step: vars(fig) for step, fig in steps.items()} for region, steps in self.steps.items()
            },
            "finished": dict(self.finished),
            "handoffs": dict(self.handoffs),
        }

    def text(self, kb: KnowledgeBase) -> str:
        share = f"{100 * self.answered / self.questions:.1f}%" if self.questions else "-"
        lines = [
            f"conversations: {self.conversations}",
            f"questions: {self.questions}, answered from the manuals: {self.answered} ({share})",
        ]
        if self.unanswered:
            lines.append("not answered (most asked first):")
            lines.extend(f"  {n:>4} × {t}" for t, n in self.unanswered.most_common(30))
        for region, steps in self.steps.items():
            proc = kb.procedures[region]
            lines.append(f"walkthrough {region} (finished: {self.finished[region]}): reached / done / skipped / now")
            for step in proc.steps:
                fig = steps.get(step.id, StepFigures())
                title = step.title.get("zh")
                lines.append(f"  {title[:24]:<24} {fig.reached:>4} {fig.done:>4} {fig.skipped:>4} {fig.current:>4}")
        if self.handoffs:
            lines.append("handoffs (reason/status): " + ", ".join(f"{k} {n}" for k, n in sorted(self.handoffs.items())))
        return "\n".join(lines)


def collect(store: Store, kb: KnowledgeBase, since: datetime | None = None) -> Stats:
    stats = Stats(since)
    openings = _fallback_openings()
    with store.session() as s:
        conv_query = select(Conversation)
        if since is not None:
            conv_query = conv_query.where(col(Conversation.updated_at) >= since)
        conversations = s.exec(conv_query).all()
        msg_query = select(MessageRecord).order_by(col(MessageRecord.conversation_id), col(MessageRecord.id))
        if since is not None:
            msg_query = msg_query.where(col(MessageRecord.created_at) >= since)
        messages = s.exec(msg_query).all()
        hq = select(HandoffRecord)
        if since is not None:
            hq = hq.where(col(HandoffRecord.opened_at) >= since)
        handoffs = s.exec(hq).all()
    stats.conversations = len(conversations)
    # A typed message was a question when its reply cited a manual (answered) or said the
    # manuals do not cover it (unanswered); other texts were commands, choices, form answers.
    asked: dict[int, str] = {}  # conversation -> its last typed text, until a reply comes
    for m in messages:
        if m.direction == "in":
            text = m.text.strip()
            if text and not text.startswith(("/", "[")):
                asked[m.conversation_id] = text
            else:
                asked.pop(m.conversation_id, None)
        elif m.direction == "out" and m.conversation_id in asked:
            question = asked.pop(m.conversation_id)
            if m.text.startswith(openings):
                stats.questions += 1
                stats.unanswered[question[:200]] += 1
            elif "来源：" in m.text or "Source:" in m.text:
                stats.questions += 1
    for conv in conversations:
        state = ConversationState.model_validate_json(conv.state)
        for company in state.companies:
            for region, prog in company.progress.items():
                if region not in kb.procedures:
                    continue
                steps = stats.steps.setdefault(region, {})
                order = [st.id for st in kb.procedures[region].steps]
                seen = set(prog.done) | set(prog.skipped) | ({prog.current} if prog.current else set())
                furthest = max((order.index(x) for x in seen if x in order), default=-1)
                for i, step_id in enumerate(order):
                    fig = steps.setdefault(step_id, StepFigures())
                    fig.reached += i <= furthest
                    fig.done += step_id in prog.done
                    fig.skipped += step_id in prog.skipped
                    fig.current += step_id == prog.current and not prog.finished
                stats.finished[region] += prog.finished
    for h in handoffs:
        stats.handoffs[f"{h.reason}/{h.status}"] += 1
    return stats


def as_json(stats: Stats) -> str:
    return json.dumps(stats.as_dict(), ensure_ascii=False, indent=2)
