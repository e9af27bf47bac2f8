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

    def where(self, tickets: FromClause) -> list[ColumnElement[Any]]:
        # by the time the resident reported, so a ticket stays in the month it was raised in
        clauses: list[ColumnElement[Any]] = [tickets.c.created_at >= self.period.start,
                                             tickets.c.created_at < self.period.end]
        if self.community_id is not None:
            clauses.append(tickets.c.community_id == self.community_id)
        return clauses


def group_columns(tickets: FromClause) -> list[ColumnElement[Any]]:
    """The finest grouping every query returns; grids, workers, communities roll up from it."""
    return [tickets.c.grid_id, tickets.c.community_id, tickets.c.assignee_id]
