"""The queues page, and the actions taken from it (through the core, like a button press)."""

from __future__ import annotations

import re
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
from bot.tickets.lifecycle import MIRRORED
from bot.tickets.sla import NORMAL, URGENT
from handlers.web import coreports_view, queues, sources
from handlers.web.context import DESK_KEY, DeskState, current
from handlers.web.queues import QUEUES, Filters
from handlers.web.security import csrf_ok
from handlers.web.staff import Staff
from models.enums import ACTIVE, OPEN_STATES, Category
from models.enums import TicketState as S
from models.tickets import Ticket

# what a desk form may ask of the core
DESK_OPS = ("assign", "transfer_to", "reject", "priority", "remark", "merge", "split")
PRIORITY_WORDS = {NORMAL: "一般", URGENT: "紧急"}  # what 优先 takes, as coordinators write it


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
    priority_to: str  # the other priority, offered as one button; "" when it cannot change
    remarkable: bool
    nonce: str  # names this form's press: a double click acts once
    mergeable: bool = False  # 合并到…: an open ticket that follows nothing
    followers: int = 0  # co-reports following it, in the 附议 queue


def row_for(state: DeskState, staff: Staff, tk: Ticket, now: datetime, followers: int = 0
            ) -> Row:
    idx = state.app.deps.county.index
    names = {cid: name for cid, name in idx.communities.values()}
    acting = staff.identity is not None
    # only coordinators and the centre may reject or merge (the core checks it again)
    manages = acting and (staff.centre or tk.community_id in staff.community_ids)
    assign: list[str] = []
    if acting and S(tk.state) in (S.REPORTED, S.RETURNED):
        assign = assign_targets(state.app.deps, tk) or (list(idx.grids) if staff.centre else [])
    transfer = transfer_targets(state.app.deps, tk) \
        if acting and S(tk.state) in ACTIVE - {S.REOPENED} else []
    return Row(tk, names.get(tk.community_id or 0, "—"), idx.grid_name(tk.grid_id),
               tk.created_at.astimezone(state.tz).strftime("%m-%d %H:%M"),
               queues.hours_late(tk, now),
               [(c, idx.label(c)) for c in assign], [(c, idx.label(c)) for c in transfer],
               manages and "reject" in actions.OPS
               and S(tk.state) in (S.REPORTED, S.RETURNED, S.ASSIGNED),
               # what set_priority accepts; every desk role manages what it sees
               (URGENT if tk.priority == NORMAL else NORMAL)
               if acting and S(tk.state) in ACTIVE | {S.REPORTED, S.RETURNED}
               and tk.channel not in MIRRORED else "",
               acting, secrets.token_urlsafe(12),
               manages and "merge" in actions.OPS and S(tk.state) in OPEN_STATES
               and tk.merged_into_id is None and tk.channel not in MIRRORED,
               followers)


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
    older = _id(before)
    async with state.app.deps.reader()() as s:
        if name == "coreports":
            led = await queues.followed(s, staff, filters, idx, state.tz, older)
        else:
            led = [(tk, 0) for tk in await queues.page(s, staff, name, filters, idx, state.tz,
                                                       now, older)]
    found = [tk for tk, _n in led]
    rows = [row_for(state, staff, tk, now, n) for tk, n in led]
    ctx: dict[str, Any] = {
        "queue": name, "queues": QUEUES, "rows": rows, "filters": filters,
        "more": found[-1].id if len(found) == queues.PAGE else None,
        "communities": sorted((code, n) for code, (cid, n) in idx.communities.items()
                              if staff.centre or cid in staff.community_ids),
        "grids": sorted((g.code, idx.label(g.code)) for g in idx.grids.values()
                        if staff.centre or g.community_id in staff.community_ids
                        or g.id in staff.grid_ids),
        "categories": [c.value for c in Category],
        "priorities": (URGENT, NORMAL),
        "sources": sources.choices({tk.channel for tk in found} | {filters.source}),
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
    if op not in DESK_OPS or ctx is None or (op in ("reject", "remark") and not arg) \
            or (op == "split" and arg):
        raise web.HTTPBadRequest
    if op == "priority":
        if arg not in PRIORITY_WORDS:
            raise web.HTTPBadRequest
        arg = PRIORITY_WORDS[arg]
    lead = await _lead(request, staff, str(form.get("of", ""))) \
        if form.get("where") == "coreports" else None
    nonce = str(form.get("nonce", ""))[:32]
    if op == "merge" and not _number(state, arg):
        # said here, before the core: a form's typing slip needs no trip to it
        today = state.app.deps.clock().astimezone(state.tz)
        example = f"{state.app.deps.prefix}-{today:%Y%m%d}-0001"
        answer, done = t("desk.merge_bad", example=example), False
    else:
        answer, done = await state.app.core.on_action(
            ctx, Action(op, ticket_id, re.sub(r"\s+", "", arg).upper() if op == "merge"
                        else arg), key=f"desk:{nonce}" if nonce else None)
    async with state.app.deps.reader()() as s:
        tk = await s.get(Ticket, ticket_id)
        if lead is not None:
            lead = await s.get(Ticket, lead.id)
            found = await coreports_view.followers(s, lead.id) if lead else []
    assert tk is not None
    said = t("desk.done" if done else "desk.refused", answer=answer)
    if lead is not None:
        return aiohttp_jinja2.render_template("_coreports.html", request,
                                              coreports_view.section(state, staff, lead, found,
                                                                     said, done))
    row = row_for(state, staff, tk, state.app.deps.clock())
    return aiohttp_jinja2.render_template("done.html", request, {
        "row": row, "done": done, "in_row": form.get("where") == "row",
        "answer": said})


def _number(state: DeskState, arg: str) -> bool:
    """A whole ticket number as the service writes them (spaces and case forgiven)."""
    return re.fullmatch(rf"{re.escape(state.app.deps.prefix)}-\d{{8}}-\d{{4,6}}",
                        re.sub(r"\s+", "", arg).upper()) is not None


async def _lead(request: web.Request, staff: Staff, of: str) -> Ticket:
    """The ticket whose 附议 section a split was pressed in: shown again, updated."""
    state = request.app[DESK_KEY]
    lead_id = _id(of)
    async with state.app.deps.reader()() as s:
        lead = await s.get(Ticket, lead_id) if lead_id else None
    if lead is None or not staff.may_see(lead):
        raise web.HTTPForbidden
    return lead


def _id(text: str) -> int | None:
    """A ticket id from a form or a link; "²" is a digit to str.isdigit, not to int()."""
    return int(text) if re.fullmatch(r"[0-9]{1,19}", text) and int(text) <= MAX_ID else None
