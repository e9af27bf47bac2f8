"""Where satisfaction verdicts come from. Each source is counted and shown on its own.

In-chat ratings (居民评价) are transitions out of `resolved`, the same events that count
reopenings, so `rates` reads both in one scan (`CHAT` has no query of its own). Any other
source is one GROUP BY query returning the finest group (grid, community, assignee of the
ticket) and its 满意 / 基本满意 / 不满意 counts; call-back results (回访) are one over
their own table, joined to the ticket they are about. `rates.compute` keeps every source's
tally beside the others and the report shows one set of columns per source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from bot.reports.scope import Scope
from models.callbacks import REACHED, CallbackCall
from models.enums import Satisfaction
from models.enums import TicketState as S
from models.tickets import Ticket, TicketEvent

TICKETS = Ticket.__table__
EVENTS = TicketEvent.__table__
CALLS = CallbackCall.__table__


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


def _callback_query(scope: Scope) -> Select[Any]:
    """Answered call-backs, by the grid worker's rating (the one about how the ticket was
    handled; the brief shows the community's and the owners' committee's beside it). A call
    about a ticket counts in the period the ticket was reported in, like an in-chat rating;
    a household drawn from the register, in the period it was called."""
    c = CALLS.c
    start, end = scope.period.start, scope.period.end
    when = or_(and_(c.ticket_id.is_not(None), TICKETS.c.created_at >= start,
                    TICKETS.c.created_at < end),
               and_(c.ticket_id.is_(None), c.recorded_at >= start, c.recorded_at < end))
    where = [c.outcome == REACHED, c.worker_rating != "", when]
    if scope.community_id is not None:
        where.append(c.community_id == scope.community_id)
    if scope.partner_id is not None:  # calls about the partner's tickets only
        where.append(TICKETS.c.partner_id == scope.partner_id)
    return (
        select(c.grid_id, c.community_id, TICKETS.c.assignee_id,
               *(func.count(case((c.worker_rating == v.value, 1)))
                 for v in (Satisfaction.SATISFIED, Satisfaction.FAIRLY,
                           Satisfaction.UNSATISFIED)))
        .select_from(CALLS.outerjoin(TICKETS, TICKETS.c.id == c.ticket_id))
        .where(*where)
        .group_by(c.grid_id, c.community_id, TICKETS.c.assignee_id)
    )


CHAT = RatingSource("chat", "居民评价")
CALLBACK = RatingSource("callback", "电话回访", _callback_query)
SOURCES: tuple[RatingSource, ...] = (CHAT, CALLBACK)
