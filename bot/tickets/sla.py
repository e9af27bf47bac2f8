"""Deadline arithmetic: working hours and days on the mainland calendar and the county's own."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from models.enums import TicketState as S

log = logging.getLogger(__name__)

TOP_LEVEL = 3  # leader -> community -> command centre

URGENT, NORMAL = "urgent", "normal"  # tickets.priority


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """The county's clock: working time, deadlines per priority, quiet hours, the digest."""

    tz: ZoneInfo
    day_start: int = 8
    day_end: int = 18
    ack_hours: float = 2.0
    resolve_work_days: int = 3
    route_minutes: int = 30
    confirm_days: int = 3
    step_hours: float = 4.0
    # urgent tickets run on the clock, not on working time: a gas smell on a Friday evening
    # cannot wait for Monday's office hours; 30 minutes and a day is what 应急值守 expects
    ack_hours_urgent: float = 0.5
    resolve_hours_urgent: float = 24.0
    urgent_categories: frozenset[str] = frozenset({"安全隐患"})
    # local hours [start, end) when non-urgent escalations to staff wait; equal = none
    quiet_start: int = 0
    quiet_end: int = 0
    digest_at: time = time(8, 30)


# the county's own days (holidays.yaml), set by the county index on every (re)load
_county_days: Mapping[date, bool] = {}
_county_years: frozenset[int] = frozenset()


def use_county_calendar(days: Mapping[date, bool]) -> None:
    """Holidays and worked weekend days from the county's files; they win over the package."""
    global _county_days, _county_years
    if dict(days) == dict(_county_days):
        return
    _county_days, _county_years = dict(days), frozenset(d.year for d in days)
    for cached in (is_workday, add_work_hours, add_work_days):
        cached.cache_clear()


@lru_cache(maxsize=4096)
def is_workday(day: date) -> bool:
    if day in _county_days:
        return _county_days[day]
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # the State Council publishes each year's adjusted days late in the year before;
        # until the package knows that year, Monday-Friday plus the county's own days
        if day.year not in _county_years:
            log.warning("no holiday data for %s; treating Mon-Fri as workdays (add the year's "
                        "days to the county's holidays.yaml)", day.year)
        return day.weekday() < 5


# every ticket of an intake batch shares one `now`: its deadlines are computed once
@lru_cache(maxsize=1024)
def add_work_hours(start: datetime, hours: float, cfg: SlaConfig) -> datetime:
    """`hours` of working time after `start`, counting only working hours of workdays."""
    local = start.astimezone(cfg.tz)
    remaining = timedelta(hours=hours)
    day = local.date()
    cursor = local
    while True:
        open_at = datetime.combine(day, time(cfg.day_start), cfg.tz)
        close_at = datetime.combine(day, time(cfg.day_end), cfg.tz)
        if is_workday(day) and cursor < close_at:
            begin = max(cursor, open_at)
            if begin + remaining <= close_at:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= close_at - begin
        day += timedelta(days=1)
        cursor = datetime.combine(day, time(0), cfg.tz)


@lru_cache(maxsize=1024)
def add_work_days(start: datetime, days: int, cfg: SlaConfig) -> datetime:
    """End of the working day `days` workdays after `start`'s day."""
    day = start.astimezone(cfg.tz).date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_workday(day):
            counted += 1
    return datetime.combine(day, time(cfg.day_end), cfg.tz).astimezone(start.tzinfo)


def priority_for(category: str, cfg: SlaConfig) -> str:
    return URGENT if category in cfg.urgent_categories else NORMAL


def ack_due(start: datetime, priority: str, cfg: SlaConfig) -> datetime:
    if priority == URGENT:
        return start + timedelta(hours=cfg.ack_hours_urgent)
    return add_work_hours(start, cfg.ack_hours, cfg)


def resolve_due(start: datetime, priority: str, cfg: SlaConfig) -> datetime:
    if priority == URGENT:
        return start + timedelta(hours=cfg.resolve_hours_urgent)
    return add_work_days(start, cfg.resolve_work_days, cfg)


def quiet_until(now: datetime, cfg: SlaConfig) -> datetime | None:
    """The end of the quiet hours `now` falls in (local time), or None outside them."""
    if cfg.quiet_start == cfg.quiet_end:
        return None
    local = now.astimezone(cfg.tz)
    hour = local.hour
    overnight = cfg.quiet_start > cfg.quiet_end  # 22-7
    inside = (hour >= cfg.quiet_start or hour < cfg.quiet_end) if overnight \
        else cfg.quiet_start <= hour < cfg.quiet_end
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if overnight and hour >= cfg.quiet_start \
        else local.date()
    return datetime.combine(day, time(cfg.quiet_end), cfg.tz).astimezone(now.tzinfo)


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """QUIET_HOURS: "22-7" -> (22, 7); "" or "off" -> no quiet hours."""
    if text.strip().lower() in ("", "off", "none"):
        return 0, 0
    start, sep, end = text.partition("-")
    hours = (int(start), int(end)) if sep else (-1, -1)
    if not all(0 <= h <= 23 for h in hours):
        raise ValueError(f"QUIET_HOURS 应写成 22-7（几点到几点），不能是 {text!r}")
    return hours


@dataclass(frozen=True, slots=True)
class Deadlines:
    route_due_at: datetime | None
    ack_due_at: datetime | None
    resolve_due_at: datetime | None
    confirm_due_at: datetime | None
    escalation_at: datetime | None


def phase_due(
    state: S,
    route_due_at: datetime | None,
    ack_due_at: datetime | None,
    resolve_due_at: datetime | None,
    confirm_due_at: datetime | None,
) -> datetime | None:
    if state == S.REPORTED:
        return route_due_at
    if state in (S.ASSIGNED, S.REOPENED):
        return ack_due_at
    if state in (S.ACKNOWLEDGED, S.IN_PROGRESS):
        return resolve_due_at
    if state == S.RESOLVED:
        return confirm_due_at
    return None


def next_escalation(
    due: datetime | None,
    state: S,
    level: int,
    last_escalated_at: datetime | None,
    cfg: SlaConfig,
) -> datetime | None:
    """When the sweeper must next look at a ticket: the phase deadline, then one rung per step."""
    if due is None:
        return None
    if state in (S.REPORTED, S.RESOLVED):
        return due  # one-shot: unrouted queue, auto-close
    if last_escalated_at is None or last_escalated_at < due:
        return due
    if level >= TOP_LEVEL:
        return None
    return last_escalated_at + timedelta(hours=cfg.step_hours)
