"""Reports for the help-desk lead: handoffs as CSV (``portpal handoff export``).

Personal data stays masked: resolutions and notes were masked when they were stored, the
user is named by a digest of their chat rather than the chat id, and the transcript is not
exported (it stays in the database, masked, for whoever needs the detail).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.store import HandoffRecord

__all__ = ["HANDOFF_COLUMNS", "handoff_csv"]

HANDOFF_COLUMNS = [
    "user", "number", "company", "reason", "status", "opened_at", "claimed_at", "closed_at",
    "waiting_minutes", "handling_minutes", "staff", "resolution", "notes",
]  # fmt: skip


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _minutes(start: datetime | None, end: datetime | None) -> str:
    start, end = _utc(start), _utc(end)
    return f"{(end - start).total_seconds() / 60:.1f}" if start and end else ""


def _iso(at: datetime | None) -> str:
    at = _utc(at)
    return at.isoformat(timespec="seconds") if at else ""


def handoff_csv(records: Iterable[HandoffRecord]) -> str:
    """One line per handoff: waiting time (opened to claimed), handling time (claimed to
    closed), reason and resolution. Still-open handoffs have blanks where times are unknown."""
    out = io.StringIO()
    writer = csv.DictWriter(out, HANDOFF_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        user = hashlib.sha256(f"{r.channel}:{r.chat_id}".encode()).hexdigest()[:12]
        writer.writerow(
            {
                "user": user, "number": r.number, "company": r.company, "reason": r.reason, "status": r.status,
                "opened_at": _iso(r.opened_at), "claimed_at": _iso(r.claimed_at), "closed_at": _iso(r.closed_at),
                "waiting_minutes": _minutes(r.opened_at, r.claimed_at),
                "handling_minutes": _minutes(r.claimed_at, r.closed_at),
                "staff": r.staff_name or "", "resolution": r.resolution or "",
                "notes": " | ".join(json.loads(r.notes or "[]")),
            }
        )  # fmt: skip
    return out.getvalue()
