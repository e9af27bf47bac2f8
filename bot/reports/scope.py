"""Which tickets a report covers: those reported in a period, optionally of one community."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import FromClause
from sqlalchemy.sql.elements import ColumnElement

from bot.reports.period import Period


@dataclass(frozen=True, slots=True)
class Scope:
    period: Period
    community_id: int | None = None
    partner_id: int | None = None  # only the tickets handed to this partner unit (转办)
    with_co_reports: bool = False  # every report, not every ticket: how often a place came up

    def where(self, tickets: FromClause) -> list[ColumnElement[Any]]:
        # by the time the resident reported, so a ticket stays in the month it was raised in
        clauses: list[ColumnElement[Any]] = [tickets.c.created_at >= self.period.start,
                                             tickets.c.created_at < self.period.end]
        if not self.with_co_reports:
            # a co-report (附议) is counted once, as the ticket it follows (Counts.co_reports)
            clauses.append(tickets.c.state != "merged")
        if self.community_id is not None:
            clauses.append(tickets.c.community_id == self.community_id)
        if self.partner_id is not None:
            clauses.append(tickets.c.partner_id == self.partner_id)
        return clauses


def group_columns(tickets: FromClause) -> list[ColumnElement[Any]]:
    """The finest grouping every query returns; grids, workers, communities roll up from it."""
    return [tickets.c.grid_id, tickets.c.community_id, tickets.c.assignee_id]
