"""Deadline arithmetic on the mainland working calendar."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.tickets.sla import (
    SlaConfig,
    add_work_days,
    add_work_hours,
    is_workday,
    use_county_calendar,
)

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


@pytest.fixture
def county_days() -> Iterator[None]:
    yield
    use_county_calendar({})


def test_county_days_win_and_cover_a_year_the_package_does_not_know(
        county_days: None, caplog: pytest.LogCaptureFixture) -> None:
    # 2035: far past any chinesecalendar release here; a county that has the schedule says so
    use_county_calendar({date(2035, 1, 1): False, date(2035, 1, 6): True})
    with caplog.at_level(logging.WARNING, logger="bot.tickets.sla"):
        assert not is_workday(date(2035, 1, 1))  # a Monday, off
        assert is_workday(date(2035, 1, 6))  # a Saturday, worked
        assert is_workday(date(2035, 1, 2))  # an ordinary Tuesday
    assert "no holiday data" not in caplog.text  # the county covers the year
    # Friday 2034-12-29 17:00 + 2 working hours: 1h that day, Monday off, 1h on Tuesday
    assert add_work_hours(sh(2034, 12, 29, 17), 2, CFG) == sh(2035, 1, 2, 9)
    # three working days after Thursday 2035-01-04: Fri 5th, Sat 6th (worked), Mon 8th
    assert add_work_days(sh(2035, 1, 4, 10), 3, CFG) == sh(2035, 1, 8, 18)


def test_county_days_override_the_package_and_are_forgotten_when_removed(
        county_days: None) -> None:
    assert is_workday(date(2026, 11, 27))  # a Friday
    use_county_calendar({date(2026, 11, 27): False})  # a local day off
    assert not is_workday(date(2026, 11, 27))
    assert add_work_hours(sh(2026, 11, 26, 17), 2, CFG) == sh(2026, 11, 30, 9)
    use_county_calendar({})
    assert is_workday(date(2026, 11, 27))
    assert add_work_hours(sh(2026, 11, 26, 17), 2, CFG) == sh(2026, 11, 27, 9)
