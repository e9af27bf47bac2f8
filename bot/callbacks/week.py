"""ISO weeks (2026-W49): what the plan is drawn for, and their bounds in the county's zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)


@dataclass(frozen=True, slots=True, order=True)
class Week:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        m = _WEEK.match(text.strip())
        if m is None:
            raise ValueError(f"周次应写成 2026-W49 这样：{text!r}")
        week = cls(int(m[1]), int(m[2]))
        try:
            week.monday()
        except ValueError:
            raise ValueError(f"{m[1]} 年没有第 {int(m[2])} 周：{text!r}") from None
        return week

    @classmethod
    def of(cls, day: date) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    def shift(self, weeks: int) -> Week:
        return Week.of(self.monday() + timedelta(weeks=weeks))

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """Monday 00:00 to the next Monday 00:00, local time, as UTC."""
        start = datetime.combine(self.monday(), time(), tz)
        return start.astimezone(UTC), (start + timedelta(weeks=1)).astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def compact(self) -> str:  # inside call numbers: 2026W49-001
        return f"{self.year}W{self.number:02d}"
