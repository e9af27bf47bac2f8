"""Deadline arithmetic on the mainland working calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.sla import SlaConfig, add_work_days, add_work_hours, is_workday

SH = ZoneInfo("Asia/Shanghai")
CFG = SlaConfig(tz=SH, day_start=8, day_end=18)


def sh(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_calendar_knows_holidays_and_adjusted_workdays() -> None:
    assert not is_workday(date(2026, 10, 1))  # National Day
    assert is_workday(date(2026, 9, 20))  # a Sunday made a workday for the Golden Week swap
    assert not is_workday(date(2026, 11, 28))  # Saturday


def test_years_without_data_fall_back_to_weekdays() -> None:
    assert is_workday(date(2031, 1, 6))  # a Monday
    assert not is_workday(date(2031, 1, 5))  # a Sunday


def test_hours_inside_a_day() -> None:
    assert add_work_hours(sh(2026, 11, 24, 10), 2, CFG) == sh(2026, 11, 24, 12)


def test_hours_roll_over_the_evening_and_weekend() -> None:
    # Friday 17:00 + 2h -> 1h Friday, 1h Monday from 08:00
    assert add_work_hours(sh(2026, 11, 27, 17), 2, CFG) == sh(2026, 11, 30, 9)


def test_report_at_night_starts_next_morning() -> None:
    assert add_work_hours(sh(2026, 11, 24, 23, 30), 2, CFG) == sh(2026, 11, 25, 10)


def test_hours_skip_national_day_week() -> None:
    assert add_work_hours(sh(2026, 9, 30, 17), 2, CFG) == sh(2026, 10, 8, 9)


def test_work_days_end_of_day() -> None:
    assert add_work_days(sh(2026, 11, 26, 15), 3, CFG) == sh(2026, 12, 1, 18)


def test_utc_in_utc_out() -> None:
    start = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    out = add_work_hours(start, 1, CFG)
    assert out.tzinfo is UTC and out == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
