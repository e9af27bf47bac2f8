"""The desk's queues: which tickets each one holds, filtered, scoped, a page at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.index import CountyIndex
from handlers.web.staff import Staff
from models.enums import OPEN_STATES
from models.enums import TicketState as S
from models.tickets import Ticket

PAGE = 50
QUEUES = ("unrouted", "overdue", "returned", "rating", "open", "coreports")


def _queue(name: str, now: datetime) -> ColumnElement[bool]:
    if name == "unrouted":
        return and_(Ticket.state == S.REPORTED, Ticket.unrouted.is_(True))
    if name == "overdue":
        return or_(
            and_(Ticket.state.in_([S.ASSIGNED, S.REOPENED]), Ticket.ack_due_at < now),
            and_(Ticket.state.in_([S.ACKNOWLEDGED, S.IN_PROGRESS]), Ticket.resolve_due_at < now))
    if name == "returned":
        return Ticket.state == S.RETURNED
    if name == "rating":
        return Ticket.state == S.RESOLVED
    return Ticket.state.in_(list(OPEN_STATES))


@dataclass(frozen=True, slots=True)
class Filters:
    community: str = ""  # codes, as the county files name them
    grid: str = ""
    category: str = ""
    source: str = ""  # a channel name
    priority: str = ""  # urgent | normal (bot.tickets.sla)
    first: date | None = None  # local days, both included
    last: date | None = None

    @classmethod
    def parse(cls, q: Mapping[str, str]) -> Filters:
        return cls(q.get("community", "")[:32], q.get("grid", "")[:32],
                   q.get("category", "")[:16], q.get("source", "")[:16],
                   q.get("priority", "")[:8], _day(q.get("from", "")), _day(q.get("to", "")))

    def query(self) -> dict[str, str]:
        out = {"community": self.community, "grid": self.grid, "category": self.category,
               "source": self.source, "priority": self.priority,
               "from": self.first.isoformat() if self.first else "",
               "to": self.last.isoformat() if self.last else ""}
        return {k: v for k, v in out.items() if v}

    def where(self, idx: CountyIndex, tz: ZoneInfo) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.community:
            cid = idx.communities.get(self.community, (0, ""))[0]
            out.append(Ticket.community_id == cid)
        if self.grid:
            g = idx.grids.get(self.grid)
            out.append(Ticket.grid_id == (g.id if g else 0))
        if self.category:
            out.append(Ticket.category == self.category)
        if self.source:
            out.append(Ticket.channel == self.source)
        if self.priority:
            out.append(Ticket.priority == self.priority)
        if self.first:
            out.append(Ticket.created_at >= datetime.combine(self.first, time(0), tz))
        if self.last:
            out.append(Ticket.created_at < datetime.combine(self.last + timedelta(days=1),
                                                            time(0), tz))
        return out


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


async def page(s: AsyncSession, staff: Staff, name: str, filters: Filters, idx: CountyIndex,
               tz: ZoneInfo, now: datetime, before: int | None = None) -> Sequence[Ticket]:
    """Up to PAGE tickets, newest first, older than ticket id `before` (keyset paging)."""
    q = select(Ticket).where(staff.sees(), _queue(name, now), *filters.where(idx, tz))
    if before is not None:
        q = q.where(Ticket.id < before)
    return (await s.scalars(q.order_by(Ticket.id.desc()).limit(PAGE))).all()


def followed_query(staff: Staff, filters: Filters, idx: CountyIndex, tz: ZoneInfo,
                   before: int | None = None) -> Select[Ticket, int]:
    """附议: tickets others' reports follow, with how many, newest first; closed ones drop
    out (a rejected one stays, so its co-reports can be split off and handled).

    Counted from the followers' side, on tickets.merged_into_id's index: the work grows with
    the co-reports there are, not with the tickets."""
    counts = select(Ticket.merged_into_id.label("lead"), func.count().label("n")).where(
        Ticket.merged_into_id.is_not(None))
    if before is not None:
        counts = counts.where(Ticket.merged_into_id < before)
    sub = counts.group_by(Ticket.merged_into_id).subquery()
    return (select(Ticket, sub.c.n).join(sub, Ticket.id == sub.c.lead)
            .where(staff.sees(), Ticket.state != S.CLOSED, *filters.where(idx, tz))
            .order_by(Ticket.id.desc()).limit(PAGE))


async def followed(s: AsyncSession, staff: Staff, filters: Filters, idx: CountyIndex,
                   tz: ZoneInfo, before: int | None = None) -> list[tuple[Ticket, int]]:
    rows = await s.execute(followed_query(staff, filters, idx, tz, before))
    return [(tk, n) for tk, n in rows.all()]


def hours_late(ticket: Ticket, now: datetime) -> int | None:
    due = {S.REPORTED: ticket.route_due_at, S.ASSIGNED: ticket.ack_due_at,
           S.REOPENED: ticket.ack_due_at, S.ACKNOWLEDGED: ticket.resolve_due_at,
           S.IN_PROGRESS: ticket.resolve_due_at}.get(S(ticket.state))
    if due is None or due >= now:
        return None
    return max(1, int((now - due).total_seconds() // 3600))
