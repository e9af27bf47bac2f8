"""A ticket's page: its report, photos, the reporter by name, every event; and its photos."""

from __future__ import annotations

from datetime import datetime

import aiohttp_jinja2
import filetype
from aiohttp import web
from sqlalchemy import select

from bot.callbacks import texts as _callback_texts  # noqa: F401  (rating words)
from bot.delivery.media import MediaRefused
from bot.messages import MAX_ID
from handlers.web import coreports_view, sources
from handlers.web.context import DESK_KEY, current
from handlers.web.map_view import ticket_map
from handlers.web.queue_view import row_for
from handlers.web.staff import Staff
from models.callbacks import REACHED, CallbackCall
from models.partners import Partner
from models.tickets import Attachment, Ticket, TicketEvent


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/tickets/{id:\\d+}", ticket_page)
    desk.router.add_get("/tickets/{id:\\d+}/map", place)
    desk.router.add_get("/media/{id:\\d+}/{sha:[0-9a-f]{64}}", media)


async def _ticket(request: web.Request) -> tuple[Ticket, Staff]:
    staff = await current(request)
    state = request.app[DESK_KEY]
    ticket_id = int(request.match_info["id"])
    async with state.app.deps.reader()() as s:
        tk = await s.get(Ticket, ticket_id) if ticket_id <= MAX_ID else None
    if tk is None:
        raise web.HTTPNotFound
    if not staff.may_see(tk):
        raise web.HTTPForbidden
    return tk, staff


def _met(done: datetime | None, due: datetime | None, now: datetime) -> bool | None:
    if due is None:
        return None
    return (done or now) <= due


async def ticket_page(request: web.Request) -> web.StreamResponse:
    tk, staff = await _ticket(request)
    state = request.app[DESK_KEY]
    async with state.app.deps.reader()() as s:
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tk.id)
                                  .order_by(TicketEvent.id))).all()
        calls = (await s.scalars(select(CallbackCall).where(
            CallbackCall.ticket_id == tk.id, CallbackCall.outcome == REACHED)
            .order_by(CallbackCall.id))).all()
        photos = (await s.scalars(select(Attachment.media_sha).where(
            Attachment.ticket_id == tk.id, Attachment.kind == "photo",
            Attachment.media_sha.is_not(None)).order_by(Attachment.id))).all()
        follows = await s.get(Ticket, tk.merged_into_id) if tk.merged_into_id else None
        found = await coreports_view.followers(s, tk.id)
        partner = await s.scalar(select(Partner.name).where(Partner.id == tk.partner_id)) \
            if tk.partner_id else None
    now = state.app.deps.clock()

    def local(at: datetime | None) -> str:
        return at.astimezone(state.tz).strftime("%Y-%m-%d %H:%M") if at else "—"

    return aiohttp_jinja2.render_template("ticket.html", request, {
        "row": row_for(state, staff, tk, now), "t_": tk, "events": events, "local": local,
        "photos": list(dict.fromkeys(photos)), "calls": calls,
        "co_reports": sum(1 for e in events if e.kind == "repeat"),
        "follows": follows, "follows_seen": follows is not None and staff.may_see(follows),
        "source": sources.label(tk.channel), "partner": partner,
        **coreports_view.section(state, staff, tk, found),
        "deadlines": [("ack", local(tk.ack_due_at), _met(tk.acknowledged_at, tk.ack_due_at, now)),
                      ("resolve", local(tk.resolve_due_at),
                       _met(tk.resolved_at, tk.resolve_due_at, now))],
    })


async def place(request: web.Request) -> web.StreamResponse:
    tk, staff = await _ticket(request)
    return await ticket_map(request, staff, tk)


async def media(request: web.Request) -> web.StreamResponse:
    """A photo of a ticket the person may see; nothing else from the store is served."""
    tk, _staff = await _ticket(request)
    state = request.app[DESK_KEY]
    sha = request.match_info["sha"]
    async with state.app.deps.reader()() as s:
        known = await s.scalar(select(Attachment.id).where(
            Attachment.ticket_id == tk.id, Attachment.media_sha == sha).limit(1))
    store = state.app.deps.media
    if known is None or store is None or not store.has(sha):
        raise web.HTTPNotFound
    try:
        data = store.get(sha)
    except (MediaRefused, OSError):
        raise web.HTTPNotFound from None
    kind = filetype.guess(data)
    return web.Response(body=data, content_type=kind.mime if kind else "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=3600"})
