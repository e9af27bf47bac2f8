"""A week's call-back plan in the database: candidates in, the draw, the calls stored.

A plan is drawn once per week and kept: asking again for the same week gives the stored calls,
so the sheet is the same however often it is printed, and results recorded since still count.
Candidates are the register's households and residents whose tickets were closed (or resolved
and awaiting their rating) that week; a resident is a candidate only with a phone on record
(resident_contacts), since the centre phones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.callbacks.draw import Candidate, Quota, draw
from bot.callbacks.week import Week
from models.callbacks import UNREACHED, CallbackCall, CallbackHousehold
from models.county import Community, CountyMeta, Grid
from models.enums import TicketState as S
from models.tickets import Ticket
from models.wecom import ResidentContact

Where = Callable[[int], tuple[str, str]]  # grid id -> (community code, grid code)


@dataclass(frozen=True, slots=True)
class Rules:
    quota: Quota
    cooldown_weeks: int
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class Planned:
    week: Week
    calls: list[CallbackCall]
    carried: int  # of them, households not reached the week before
    new: bool  # False: the plan was drawn before and is given as stored


@dataclass(frozen=True, slots=True)
class _Resident:
    candidate: Candidate
    grid_id: int
    address: str
    name: str
    phone: str


async def plan_week(s: AsyncSession, week: Week, rules: Rules, now: datetime) -> Planned:
    """The week's calls, drawn now or as drawn before. The caller owns the transaction."""
    stored = await _calls_of(s, week)
    if stored:
        return Planned(week, stored, await _count_carried(s, week), new=False)
    grids = {g.id: g for g in (await s.scalars(select(Grid).where(Grid.active.is_(True))))}
    communities = {c.id: c.code for c in await s.scalars(select(Community))}
    county = await s.scalar(select(CountyMeta.name)) or ""

    def where(grid_id: int) -> tuple[str, str]:
        g = grids[grid_id]
        return communities[g.community_id], g.code

    register = [Candidate(h.key, *where(h.grid_id)) for h in await s.scalars(
        select(CallbackHousehold).where(CallbackHousehold.active.is_(True),
                                        CallbackHousehold.source == "register"))
        if h.grid_id in grids]
    residents = await _residents(s, week, rules.tz, grids, where)
    cooling = await _cooling(s, week, rules.cooldown_weeks)
    carried = await _carried(s, week, grids, where)
    chosen = draw(week, county, [*register, *(r.candidate for r in residents.values())],
                  rules.quota, cooling=cooling, carried=carried)
    households = await _households(s, {c.key for c in chosen}, residents)
    by_code = {g.code: g for g in grids.values()}
    calls: list[CallbackCall] = []
    for i, c in enumerate(chosen, start=1):
        grid = by_code[c.grid]
        call = CallbackCall(number=f"{week.compact}-{i:03d}", week=str(week),
                            household_id=households[c.key].id,
                            grid_id=grid.id, community_id=grid.community_id,
                            ticket_id=c.ticket, drawn_at=now)
        s.add(call)
        calls.append(call)
    await s.flush()
    return Planned(week, calls, await _count_carried(s, week), new=True)


async def _calls_of(s: AsyncSession, week: Week) -> list[CallbackCall]:
    return list((await s.scalars(select(CallbackCall).where(CallbackCall.week == str(week))
                                 .order_by(CallbackCall.number))).all())


async def _residents(s: AsyncSession, week: Week, tz: ZoneInfo, grids: dict[int, Grid],
                     where: Where) -> dict[str, _Resident]:
    start, end = week.bounds(tz)
    closed = and_(Ticket.state == S.CLOSED.value, Ticket.closed_at >= start,
                  Ticket.closed_at < end)
    awaiting = and_(Ticket.state == S.RESOLVED.value, Ticket.resolved_at >= start,
                    Ticket.resolved_at < end)
    rows = await s.execute(
        select(Ticket.id, Ticket.grid_id, Ticket.place_text, ResidentContact.name,
               ResidentContact.mobile)
        .join(ResidentContact, ResidentContact.ticket_id == Ticket.id)
        .where(or_(closed, awaiting), ResidentContact.mobile != "")
        .order_by(Ticket.id))
    out: dict[str, _Resident] = {}
    for ticket_id, grid_id, place, name, mobile in rows:
        if grid_id not in grids:
            continue
        community, grid = where(grid_id)
        key = f"tel:{mobile}"
        out[key] = _Resident(Candidate(key, community, grid, ticket_id), grid_id, place or "",
                             name or "", mobile)
    return out


async def _count_carried(s: AsyncSession, week: Week) -> int:
    before = aliased(CallbackCall)
    return int(await s.scalar(
        select(func.count()).select_from(CallbackCall)
        .join(before, before.household_id == CallbackCall.household_id)
        .where(CallbackCall.week == str(week), before.week == str(week.shift(-1)),
               before.outcome == UNREACHED)) or 0)


async def _cooling(s: AsyncSession, week: Week, cooldown_weeks: int) -> set[str]:
    """Households called (or about to be) within the cooldown before `week`."""
    if cooldown_weeks <= 1:
        return set()
    since = str(week.shift(-(cooldown_weeks - 1)))
    rows = await s.scalars(
        select(CallbackHousehold.key).join(CallbackCall,
                                           CallbackCall.household_id == CallbackHousehold.id)
        .where(CallbackCall.week >= since, CallbackCall.week < str(week),
               CallbackCall.outcome != UNREACHED))
    return set(rows)


async def _carried(s: AsyncSession, week: Week, grids: dict[int, Grid],
                   where: Where) -> list[Candidate]:
    """Last week's calls nobody answered, and not answered later that week either."""
    rows = await s.execute(
        select(CallbackHousehold.key, CallbackHousehold.grid_id, CallbackCall.ticket_id)
        .join(CallbackCall, CallbackCall.household_id == CallbackHousehold.id)
        .where(CallbackCall.week == str(week.shift(-1)), CallbackCall.outcome == UNREACHED,
               CallbackHousehold.active.is_(True)))
    return [Candidate(key, *where(grid_id), ticket)
            for key, grid_id, ticket in rows if grid_id in grids]


async def _households(s: AsyncSession, keys: set[str],
                      residents: dict[str, _Resident]) -> dict[str, CallbackHousehold]:
    """The drawn households' rows; a resident seen for the first time gets one."""
    have = {h.key: h for h in await s.scalars(
        select(CallbackHousehold).where(CallbackHousehold.key.in_(keys)))}
    for key in sorted(keys - have.keys()):
        r = residents[key]
        h = CallbackHousehold(key=key, grid_id=r.grid_id, address=r.address, name=r.name,
                              phone=r.phone, source="ticket")
        s.add(h)
        have[key] = h
    await s.flush()
    return have
