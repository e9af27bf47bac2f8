"""Where satisfaction verdicts come from. Each source is counted and shown on its own.

In-chat ratings (居民评价) are transitions out of `resolved`, the same events that count
reopenings, so `rates` reads both in one scan (`CHAT` has no query of its own). Any other
source is one GROUP BY query returning the finest group (grid, community, assignee of the
ticket) and its 满意 / 基本满意 / 不满意 counts; call-back results (回访) will be one over
their own table, joined to the ticket they are about. `rates.compute` keeps every source's
tally beside the others and the report shows one set of columns per source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func
from sqlalchemy.sql.elements import ColumnElement

from bot.reports.scope import Scope
from models.enums import Satisfaction
from models.enums import TicketState as S
from models.tickets import Ticket, TicketEvent

TICKETS = Ticket.__table__
EVENTS = TicketEvent.__table__


@dataclass(frozen=True, slots=True)
class RatingSource:
    key: str
    label: str  # shown in headers: 满意率（居民评价）
    # rows of (grid_id, community_id, assignee_id, 满意, 基本满意, 不满意); None: see CHAT
    query: Callable[[Scope], Select[Any]] | None = None


def verdict_filter() -> list[ColumnElement[bool]]:
    """A resident's verdict is the transition out of `resolved` that they (or, for a ticket
    staff filed, its grid leader) made: to closed, or back to work. An auto-close has the note
    "no rating" and is no verdict."""
    return [EVENTS.c.kind == "transition", EVENTS.c.from_state == S.RESOLVED.value,
            EVENTS.c.to_state.in_((S.CLOSED.value, S.REOPENED.value))]


def verdict_counts() -> list[ColumnElement[int]]:
    """满意, 基本满意, 不满意 among the verdict events of a group."""
    return [func.count(case((EVENTS.c.note == v.value, 1)))
            for v in (Satisfaction.SATISFIED, Satisfaction.FAIRLY, Satisfaction.UNSATISFIED)]


CHAT = RatingSource("chat", "居民评价")
SOURCES: tuple[RatingSource, ...] = (CHAT,)
