"""The queues page, and the actions taken from it (through the core, like a button press)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.messages import MAX_ID, Action
from bot.notify.texts import t
from bot.tickets import actions
from bot.tickets.assign import assign_targets, transfer_targets
from handlers.web import queues
from handlers.web.context import DESK_KEY, DeskState, current
from handlers.web.queues import QUEUES, Filters
from handlers.web.security import csrf_ok
from handlers.web.staff import Staff
from models.enums import ACTIVE, Category
from models.enums import TicketState as S
from models.tickets import Ticket

DESK_OPS = ("assign", "transfer_to", "reject")  # what a desk form may ask of the core


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/queue/{name}", queue_page)
    desk.router.add_post("/tickets/{id:\\d+}/act", act)


@dataclass(frozen=True, slots=True)
class Row:
    """A ticket as a queue row shows it, with what the desk may offer on it."""

    ticket: Ticket
    community: str
    grid: str
    at: str
    late: int | None
    assign_to: list[tuple[str, str]]  # (grid code, label)
    transfer_to: list[tuple[str, str]]
    rejectable: bool
    nonce: str  # names this form's press: a double click acts once


def row_for(state: DeskState, staff: Staff, tk: Ticket, now: datetime) -> Row:
    idx = state.app.deps.county.index
    names = {cid: name for cid, name in idx.communities.values()}
    acting = staff.identity is not None
    assign: list[str] = []
    if acting and S(tk.state) in (S.REPORTED, S.RETURNED):
        assign = assign_targets(state.app.deps, tk) or (list(idx.grids) if staff.centre else [])
    transfer = transfer_targets(state.app.deps, tk) \
        if acting and S(tk.state) in ACTIVE - {S.REOPENED} else []
    return Row(tk, names.get(tk.community_id or 0, "—"), idx.grid_name(tk.grid_id),
               tk.created_at.astimezone(state.tz).strftime("%m-%d %H:%M"),
               queues.hours_late(tk, now),
               [(c, idx.label(c)) for c in assign], [(c, idx.label(c)) for c in transfer],
               # only coordinators and the centre may (the core checks it again)
               acting and "reject" in actions.OPS
               and (staff.centre or tk.community_id in staff.community_ids)
               and S(tk.state) in (S.REPORTED, S.RETURNED, S.ASSIGNED),
               secrets.token_urlsafe(12))


async def queue_page(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    name = request.match_info["name"]
    if name not in QUEUES:
        raise web.HTTPNotFound
    state = request.app[DESK_KEY]
    filters = Filters.parse(request.query)
    before = request.query.get("before", "")
    now = state.app.deps.clock()
    idx = state.app.deps.county.index
    async with state.app.deps.reader()() as s:
        found = await queues.page(s, staff, name, filters, idx, state.tz, now,
                                  int(before) if before.isdigit() and int(before) <= MAX_ID
                                  else None)
    rows = [row_for(state, staff, tk, now) for tk in found]
    ctx: dict[str, Any] = {
        "queue": name, "queues": QUEUES, "rows": rows, "filters": filters,
        "more": found[-1].id if len(found) == queues.PAGE else None,
        "communities": sorted((code, n) for code, (cid, n) in idx.communities.items()
                              if staff.centre or cid in staff.community_ids),
        "grids": sorted((g.code, idx.label(g.code)) for g in idx.grids.values()
                        if staff.centre or g.community_id in staff.community_ids
                        or g.id in staff.grid_ids),
        "categories": [c.value for c in Category],
        "sources": sorted({tk.channel for tk in found} | {filters.source} - {""}),
    }
    # htmx asks for the rows alone when a filter or "more" changes them
    template = "queue_rows.html" if request.headers.get("HX-Request") else "queue.html"
    return aiohttp_jinja2.render_template(template, request, ctx)


async def act(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    if not await csrf_ok(request):
        raise web.HTTPForbidden
    state = request.app[DESK_KEY]
    form = await request.post()
    op, arg = str(form.get("op", "")), str(form.get("arg", "")).strip()[:500]
    ticket_id = int(request.match_info["id"])
    async with state.app.deps.reader()() as s:
        tk = await s.get(Ticket, ticket_id) if ticket_id <= MAX_ID else None
    if tk is None or not staff.may_see(tk):
        raise web.HTTPForbidden
    ctx = staff.ctx()
    if op not in DESK_OPS or ctx is None or (op == "reject" and not arg):
        raise web.HTTPBadRequest
    nonce = str(form.get("nonce", ""))[:32]
    answer, done = await state.app.core.on_action(
        ctx, Action(op, ticket_id, arg), key=f"desk:{nonce}" if nonce else None)
    async with state.app.deps.reader()() as s:
        tk = await s.get(Ticket, ticket_id)
    assert tk is not None
    row = row_for(state, staff, tk, state.app.deps.clock())
    return aiohttp_jinja2.render_template("done.html", request, {
        "row": row, "done": done, "in_row": form.get("where") == "row",
        "answer": t("desk.done" if done else "desk.refused", answer=answer)})
