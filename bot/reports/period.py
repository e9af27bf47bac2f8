"""A reporting period: whole local days, turned into the UTC bounds tickets are stored in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # local days, both included
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        """The first instant of `first` in the county's zone, in UTC."""
        return datetime.combine(self.first, time(0), self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after `last` (exclusive), in UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(0), self.tz).astimezone(UTC)

    def label(self) -> str:
        if self.first.day == 1 and (self.last + timedelta(days=1)).day == 1 \
                and self.first.month == self.last.month:
            return f"{self.first.year}年{self.first.month}月"
        return f"{_day(self.first)}至{_day(self.last)}"


def _day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def month(year: int, mon: int, tz: ZoneInfo) -> Period:
    first = date(year, mon, 1)
    following = date(year + mon // 12, mon % 12 + 1, 1)
    return Period(first, following - timedelta(days=1), tz)


def previous_month(p: Period) -> Period:
    last = p.first - timedelta(days=1)
    return month(last.year, last.month, p.tz)
