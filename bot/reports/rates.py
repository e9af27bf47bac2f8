"""The three rates and their companions, aggregated in SQL (definitions: docs/rates.md).

Two GROUP BY queries over the finest group (grid, community, assignee), plus one per other
rating source. Everything they return is a count or a sum, so grids, workers, communities
and the county are added up from those few hundred rows, never from tickets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from bot.reports.ratings import (
    CHAT,
    EVENTS,
    SOURCES,
    TICKETS,
    RatingSource,
    verdict_counts,
    verdict_filter,
)
from bot.reports.scope import Scope, group_columns
from bot.reports.sqltime import seconds_between
from models.enums import TicketState as S

Key = tuple[int | None, int | None, int | None]  # grid_id, community_id, assignee_id
By = Literal["grid", "worker", "community", "partner"]  # partner: bot.reports.partners
_POSITION: dict[By, int] = {"grid": 0, "community": 1, "worker": 2}


@dataclass(slots=True)
class Tally:
    satisfied: int = 0
    fairly: int = 0
    unsatisfied: int = 0

    @property
    def rated(self) -> int:
        return self.satisfied + self.fairly + self.unsatisfied

    @property
    def rate(self) -> float | None:
        return _ratio(self.satisfied + self.fairly, self.rated)

    def add(self, other: Tally) -> None:
        self.satisfied += other.satisfied
        self.fairly += other.fairly
        self.unsatisfied += other.unsatisfied


@dataclass(slots=True)
class Counts:
    """Additive figures of one group; rates and averages are derived, never added."""

    tickets: int = 0
    rejected: int = 0
    waiting: int = 0  # not yet with any grid (asking where, or in the unrouted queue)
    returned: int = 0  # returned and not yet assigned again
    ack_due: int = 0
    ack_on_time: int = 0
    acked: int = 0
    ack_seconds: float = 0.0
    resolve_due: int = 0
    resolved_on_time: int = 0
    resolved: int = 0
    resolve_seconds: float = 0.0
    escalated: int = 0
    escalations: int = 0
    reopened: int = 0
    reopens: int = 0
    co_reports: int = 0  # other residents' reports of the same problem (附议)
    ratings: dict[str, Tally] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        for f in fields(self):
            if f.name != "ratings":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        for key, tally in other.ratings.items():
            self.ratings.setdefault(key, Tally()).add(tally)

    @property
    def response_rate(self) -> float | None:
        return _ratio(self.ack_on_time, self.ack_due)

    @property
    def resolve_rate(self) -> float | None:
        return _ratio(self.resolved_on_time, self.resolve_due)

    @property
    def avg_ack_hours(self) -> float | None:
        return _ratio(self.ack_seconds / 3600, self.acked)

    @property
    def avg_resolve_hours(self) -> float | None:
        return _ratio(self.resolve_seconds / 3600, self.resolved)

    def tally(self, source: str) -> Tally:
        return self.ratings.get(source, Tally())

    def all_ratings(self) -> Tally:
        out = Tally()
        for tally in self.ratings.values():
            out.add(tally)
        return out


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def _n(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count(case((cond, 1)))


def _flag(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return case((cond, 1), else_=0)


def _ticket_query(scope: Scope, as_of: datetime) -> Any:
    t = TICKETS.c
    live = t.state != S.REJECTED.value
    done = t.state.in_((S.RESOLVED.value, S.CLOSED.value))
    # the answer to the current assignment: its acknowledgement, or a resolution without one;
    # an acknowledgement from before a transfer, return or reopen belongs to an old assignment
    responded_at = case((t.acknowledged_at >= t.assigned_at, t.acknowledged_at),
                        (t.resolved_at >= t.assigned_at, t.resolved_at))
    answered = live & (t.state != S.RETURNED.value) & responded_at.is_not(None)
    ack_due = live & (t.state != S.RETURNED.value) & t.ack_due_at.is_not(None) \
        & or_(responded_at.is_not(None), t.ack_due_at <= as_of)
    resolve_due = live & t.resolve_due_at.is_not(None) & or_(done, t.resolve_due_at <= as_of)
    keys = group_columns(TICKETS)
    per_ticket = [
        _flag(~live),
        _flag(t.state == S.REPORTED.value),
        _flag(t.state == S.RETURNED.value),
        _flag(ack_due),
        _flag(answered & (responded_at <= t.ack_due_at)),
        _flag(answered),
        case((answered, seconds_between(t.assigned_at, responded_at)), else_=0.0),
        _flag(resolve_due),
        _flag(live & done & (t.resolved_at <= t.resolve_due_at)),
        _flag(live & done),
        case((live & done, seconds_between(t.created_at, t.resolved_at)), else_=0.0),
        _flag(live & (t.escalation_level > 0)),
        case((live, t.escalation_level), else_=0),
    ]
    # One small row per ticket, summed per group. OFFSET 0 keeps SQLite from flattening the
    # subquery into the GROUP BY: flattened, its sorter carried every ticket's ten datetime
    # strings instead of a dozen small numbers, and sorting a million of those cost seconds.
    rows = (select(*keys, *(v.label(f"v{i}") for i, v in enumerate(per_ticket)))
            .where(*scope.where(TICKETS)).offset(0).subquery("per_ticket"))
    inner_keys = [rows.c.grid_id, rows.c.community_id, rows.c.assignee_id]
    return (
        select(*inner_keys, func.count(),
               *(func.sum(rows.c[f"v{i}"]) for i in range(len(per_ticket))))
        .group_by(*inner_keys)
    )


_TICKET_FIELDS = ("tickets", "rejected", "waiting", "returned", "ack_due", "ack_on_time",
                  "acked", "ack_seconds", "resolve_due", "resolved_on_time", "resolved",
                  "resolve_seconds", "escalated", "escalations")


def _verdict_query(scope: Scope) -> Any:
    """Reopenings and in-chat ratings: both are transitions out of `resolved`."""
    keys = group_columns(TICKETS)
    reopen = EVENTS.c.to_state == S.REOPENED.value
    return (
        select(*keys, func.count(func.distinct(case((reopen, EVENTS.c.ticket_id)))),
               _n(reopen), *verdict_counts())
        .select_from(EVENTS.join(TICKETS, TICKETS.c.id == EVENTS.c.ticket_id))
        .where(*verdict_filter(), TICKETS.c.state != S.REJECTED.value, *scope.where(TICKETS))
        .group_by(*keys)
    )


def _co_report_query(scope: Scope) -> Any:
    """Co-reports counted on the ticket they follow, in that ticket's group and period."""
    lead = TICKETS.alias("lead")
    return (select(*group_columns(lead), func.count())
            .select_from(TICKETS.join(lead, lead.c.id == TICKETS.c.merged_into_id))
            .where(TICKETS.c.state == S.MERGED.value, *scope.where(lead))
            .group_by(*group_columns(lead)))


def compute(conn: Connection, scope: Scope, as_of: datetime,
            sources: Iterable[RatingSource] = SOURCES) -> dict[Key, Counts]:
    """Figures per finest group. `as_of`: a deadline after it is not yet due."""
    out: dict[Key, Counts] = {}

    def at(key: Key) -> Counts:
        return out.setdefault(key, Counts())

    for g, c_, a, *figures in conn.execute(_ticket_query(scope, as_of)):
        c = at((g, c_, a))
        for name, value in zip(_TICKET_FIELDS, figures, strict=True):
            # PostgreSQL sums come back as Decimal; the fields are plain int or float
            setattr(c, name, type(getattr(c, name))(value or 0))
    for g, c_, a, reopened, reopens, *tally in conn.execute(_verdict_query(scope)):
        c = at((g, c_, a))
        c.reopened, c.reopens = int(reopened), int(reopens)
        c.ratings[CHAT.key] = Tally(*(int(n) for n in tally))
    for g, c_, a, n in conn.execute(_co_report_query(scope)):
        at((g, c_, a)).co_reports = int(n)
    for source in sources:
        if source.query is None:
            continue
        for g, c_, a, satisfied, fairly, unsatisfied in conn.execute(source.query(scope)):
            at((g, c_, a)).ratings[source.key] = Tally(int(satisfied), int(fairly),
                                                       int(unsatisfied))
    return out


def roll_up(rows: Mapping[Key, Counts], by: By) -> dict[int | None, Counts]:
    """Add the finest groups up to grids, workers or communities (None: no grid/worker/...)."""
    out: dict[int | None, Counts] = {}
    for key, counts in rows.items():
        out.setdefault(key[_POSITION[by]], Counts()).add(counts)
    return out


def total(rows: Iterable[Counts]) -> Counts:
    out = Counts()
    for counts in rows:
        out.add(counts)
    return out
