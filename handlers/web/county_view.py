"""The county as the desk shows it, read only: communities, grids with their staff and open
tickets, staff with their posts and bound chat accounts (never a phone), and the gazetteer.

Scoped like the queues (directory.Oversight): a coordinator sees their community, a grid
leader their grid, the command centre the county.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import ColumnElement, distinct, func, or_, select, true

from bot.county.index import CountyIndex, GridInfo
from bot.notify.texts import t
from handlers.web.context import DESK_KEY, current
from handlers.web.staff import Staff
from models.county import Grid, Place
from models.enums import OPEN_STATES, StaffRole
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket

PAGE = 50
CHANNELS = ("telegram", "console", "wechat", "wecom", "wecom_robot", "bridge")  # desk.ch_*


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/county", _to_grids)
    desk.router.add_get("/county/communities", communities_page)
    desk.router.add_get("/county/grids", grids_page)
    desk.router.add_get("/county/staff", staff_page)
    desk.router.add_get("/county/places", places_page)


async def _to_grids(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desk/county/grids")


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    pages: int
    total: int
    query: dict[str, str]  # the page's other parameters, kept by its links

    @classmethod
    def of(cls, q: Mapping[str, str], total: int, keep: dict[str, str]) -> Pager:
        pages = max(1, -(-total // PAGE))
        raw = q.get("page", "1")
        page = int(raw) if raw.isdigit() and len(raw) <= 9 else 1
        return cls(min(max(page, 1), pages), pages, total, {k: v for k, v in keep.items() if v})

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE

    def link(self, page: int) -> dict[str, str]:
        return {**self.query, "page": str(page)}


def scope_grids(idx: CountyIndex, staff: Staff) -> list[GridInfo]:
    """The active grids the person oversees, by community then code."""
    return sorted((g for g in idx.grids.values()
                   if staff.centre or g.community_id in staff.community_ids
                   or g.id in staff.grid_ids),
                  key=lambda g: (g.community_code, g.code))


def numbers_label(spec: str) -> str:
    return spec.replace(" odd", " " + t("desk.numbers_odd")).replace(
        " even", " " + t("desk.numbers_even"))


def channel_label(name: str) -> str:
    return t(f"desk.ch_{name}") if name in CHANNELS else name


def _render(request: web.Request, template: str, tab: str, ctx: dict[str, Any]) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, {"tab": tab, **ctx})


def _open(staff: Staff) -> list[ColumnElement[bool]]:
    return [staff.sees(), Ticket.state.in_(list(OPEN_STATES))]


async def communities_page(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    state = request.app[DESK_KEY]
    idx = state.app.deps.county.index
    grids = scope_grids(idx, staff)
    ids = {g.community_id for g in grids} | set(staff.community_ids)
    async with state.app.deps.reader()() as s:
        open_by = dict((await s.execute(
            select(Ticket.community_id, func.count()).where(*_open(staff))
            .group_by(Ticket.community_id))).all())
    rows = [(code, name, sum(1 for g in grids if g.community_id == cid), open_by.get(cid, 0))
            for code, (cid, name) in sorted(idx.communities.items())
            if staff.centre or cid in ids]
    return _render(request, "county_communities.html", "communities", {"rows": rows})


@dataclass(frozen=True, slots=True)
class GridRow:
    grid: GridInfo
    workers: list[str]
    leaders: list[str]
    open: int


async def grids_page(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    state = request.app[DESK_KEY]
    idx = state.app.deps.county.index
    community = request.query.get("community", "")[:32]
    grids = scope_grids(idx, staff)
    communities = sorted({(g.community_code, g.community_name) for g in grids})
    if community:
        grids = [g for g in grids if g.community_code == community]
    pager = Pager.of(request.query, len(grids), {"community": community})
    shown = grids[pager.offset:pager.offset + PAGE]
    ids = [g.id for g in shown]
    async with state.app.deps.reader()() as s:
        posts = (await s.execute(
            select(StaffAssignment.grid_id, StaffAssignment.role, Person.name)
            .join(Person, Person.id == StaffAssignment.person_id)
            .where(StaffAssignment.grid_id.in_(ids), StaffAssignment.active.is_(True),
                   Person.active.is_(True),
                   StaffAssignment.role.in_([StaffRole.WORKER.value, StaffRole.LEADER.value]))
            .order_by(StaffAssignment.id))).all()
        open_by = dict((await s.execute(
            select(Ticket.grid_id, func.count()).where(*_open(staff), Ticket.grid_id.in_(ids))
            .group_by(Ticket.grid_id))).all())
    rows = [GridRow(g, list(dict.fromkeys(n for gid, r, n in posts
                                          if gid == g.id and r == StaffRole.WORKER)),
                    list(dict.fromkeys(n for gid, r, n in posts
                                       if gid == g.id and r == StaffRole.LEADER)),
                    open_by.get(g.id, 0)) for g in shown]
    return _render(request, "county_grids.html", "grids", {
        "rows": rows, "pager": pager, "communities": communities, "community": community})


@dataclass(frozen=True, slots=True)
class StaffRow:
    name: str
    posts: list[str]
    channels: list[str]


def _post_label(idx: CountyIndex, a: StaffAssignment) -> str:
    role = t(f"role.{a.role}")
    if a.grid_id is not None:
        g = idx.grids_by_id.get(a.grid_id)
        return t("desk.post_in", role=role, where=idx.label(g.code)) if g else role
    names = {cid: name for cid, name in idx.communities.values()}
    if a.community_id is not None and a.community_id in names:
        return t("desk.post_in", role=role, where=names[a.community_id])
    return role


async def staff_page(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    state = request.app[DESK_KEY]
    idx = state.app.deps.county.index
    grid_ids = [g.id for g in scope_grids(idx, staff)]
    in_scope = true() if staff.centre else or_(
        StaffAssignment.grid_id.in_(grid_ids),
        StaffAssignment.community_id.in_(list(staff.community_ids)))
    posted = [StaffAssignment.active.is_(True), Person.active.is_(True), in_scope,
              StaffAssignment.role.in_([r.value for r in StaffRole])]
    async with state.app.deps.reader()() as s:
        total = await s.scalar(select(func.count(distinct(Person.id))).join(
            StaffAssignment, StaffAssignment.person_id == Person.id).where(*posted)) or 0
        pager = Pager.of(request.query, total, {})
        people = (await s.execute(
            select(Person.id, Person.name).join(
                StaffAssignment, StaffAssignment.person_id == Person.id).where(*posted)
            .group_by(Person.id, Person.name).order_by(Person.name, Person.id)
            .offset(pager.offset).limit(PAGE))).all()
        ids = [pid for pid, _n in people]
        posts = (await s.scalars(select(StaffAssignment).join(
            Person, Person.id == StaffAssignment.person_id).where(
            StaffAssignment.person_id.in_(ids), *posted).order_by(StaffAssignment.id))).all()
        bound = (await s.execute(select(Identity.person_id, Identity.channel).where(
            Identity.person_id.in_(ids)).distinct())).all()
    rows = [StaffRow(name,
                     list(dict.fromkeys(_post_label(idx, a) for a in posts if a.person_id == pid)),
                     sorted({channel_label(c) for p, c in bound if p == pid}))
            for pid, name in people]
    return _render(request, "county_staff.html", "staff", {"rows": rows, "pager": pager})


async def places_page(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    state = request.app[DESK_KEY]
    idx = state.app.deps.county.index
    grids = scope_grids(idx, staff)
    grid = request.query.get("grid", "")[:32]
    q = request.query.get("q", "").strip()[:64]
    where: list[ColumnElement[bool]] = [Place.active.is_(True), Grid.active.is_(True)]
    if not staff.centre:
        where.append(Grid.id.in_([g.id for g in grids]))
    if grid:
        where.append(Grid.code == grid)
    if q:
        where.append(Place.name.contains(q, autoescape=True))
    async with state.app.deps.reader()() as s:
        total = await s.scalar(select(func.count()).select_from(Place).join(
            Grid, Grid.id == Place.grid_id).where(*where)) or 0
        pager = Pager.of(request.query, total, {"grid": grid, "q": q})
        places = (await s.execute(
            select(Place, Grid.code).join(Grid, Grid.id == Place.grid_id).where(*where)
            .order_by(Grid.code, Place.name, Place.id).offset(pager.offset).limit(PAGE)
        )).all()
    return _render(request, "county_places.html", "places", {
        "rows": [(p, idx.label(code)) for p, code in places], "pager": pager,
        "grids": [(g.code, idx.label(g.code)) for g in grids], "grid": grid, "q": q,
        "numbers_label": numbers_label})
