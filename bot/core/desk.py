"""How the help desk works: service hours and handoff timings (settings, no I/O).

Kept apart from ``bot.core.handoff`` so that reading the settings imports nothing heavy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Desk", "ServiceHours"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class ServiceHours:
    """When staff answer: some weekdays, one daily window, in one time zone."""

    days: frozenset[int]  # Monday = 0
    start: time
    end: time
    zone: ZoneInfo
    spec: str

    @classmethod
    def parse(cls, spec: str, zone: str = "Asia/Shanghai") -> ServiceHours:
        """``mon-fri 09:00-17:30`` (or ``always``); ValueError says what is wrong."""
        tz = ZoneInfo(zone)
        if spec.strip().lower() == "always":
            return cls(frozenset(range(7)), time(0, 0), time(23, 59, 59), tz, "always")
        match = _HOURS.match(spec.lower())
        if not match or match.group(1) not in _DAYS or (match.group(2) and match.group(2) not in _DAYS):
            raise ValueError(f"service hours {spec!r}: expected e.g. 'mon-fri 09:00-17:30' or 'always'")
        first = _DAYS.index(match.group(1))
        last = _DAYS.index(match.group(2)) if match.group(2) else first
        days = frozenset(d % 7 for d in range(first, last + 1 if last >= first else last + 8))
        h1, m1, h2, m2 = (int(g) for g in match.groups()[2:])
        if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60) or (h1, m1) >= (h2, m2):
            raise ValueError(f"service hours {spec!r}: the window must be HH:MM-HH:MM with start before end")
        return cls(days, time(h1, m1), time(h2, m2), tz, spec.strip())

    def open_at(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time().replace(tzinfo=None) < self.end

    def next_opening(self, after: datetime) -> datetime:
        """The first start of a service window after ``after`` (aware, in ``zone``)."""
        day = after.astimezone(self.zone).date()
        for offset in range(8):
            date = day + timedelta(days=offset)
            start = datetime.combine(date, self.start, self.zone)
            if date.weekday() in self.days and start > after:
                return start
        raise AssertionError("service hours name at least one weekday")


@dataclass(frozen=True)
class Desk:
    """How the help desk works (from settings). Without a staff group (``enabled`` False)
    a request for a person gets the hotlines, as before there was a desk."""

    enabled: bool = False
    hours: ServiceHours | None = None  # None: always staffed
    nudge_after: timedelta = timedelta(minutes=5)
    give_up_after: timedelta = timedelta(minutes=15)
    wait_minutes: int = 5
    show_names: bool = False

    def open_at(self, at: datetime) -> bool:
        return self.hours is None or self.hours.open_at(at)

    def next_opening(self, after: datetime) -> datetime | None:
        """When staff are next back, if there are service hours."""
        return None if self.hours is None or self.hours.spec == "always" else self.hours.next_opening(after)
