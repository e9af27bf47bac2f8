"""The call-back desk (回访): the week's sample with phone numbers, for the command centre only
(the one place the desk shows a phone), and a result form that records as the call-back words
do (bot.callbacks.chat: the same role check, the same effects)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from bot.callbacks import chat
from bot.callbacks.sheet import lines
from bot.callbacks.week import Week
from bot.callbacks.words import NONE, Result
from bot.tickets.lifecycle import Refused
from handlers.web.context import DESK_KEY, centre_only
from handlers.web.security import csrf_ok
from models.callbacks import CallbackCall
from models.enums import Satisfaction

RATINGS = ("", *(s.value for s in Satisfaction))


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/callbacks", callbacks_page)
    desk.router.add_post("/callbacks/{number:\\d{4}W\\d{2}-\\d{1,4}}", record)


async def callbacks_page(request: web.Request) -> web.StreamResponse:
    await centre_only(request)
    state = request.app[DESK_KEY]
    try:
        week = Week.parse(request.query["week"]) if "week" in request.query \
            else Week.of(state.app.deps.clock().astimezone(state.tz).date())
    except ValueError:
        raise web.HTTPNotFound from None
    async with state.app.deps.reader()() as s:
        found = await lines(s, week)
        calls = {c.number: c for c in await s.scalars(
            select(CallbackCall).where(CallbackCall.week == str(week)))}
    ctx: dict[str, Any] = {"week": week, "lines": found, "calls": calls, "ratings": RATINGS}
    return aiohttp_jinja2.render_template("callbacks.html", request, ctx)


def _rating(value: object) -> str:
    text = str(value or "")
    return text if text in RATINGS else NONE


async def record(request: web.Request) -> web.StreamResponse:
    staff = await centre_only(request)
    if not await csrf_ok(request):
        raise web.HTTPForbidden
    ctx = staff.ctx()
    if ctx is None:
        raise web.HTTPForbidden
    state = request.app[DESK_KEY]
    form = await request.post()
    number = request.match_info["number"]
    result = Result(ref=number, reached=form.get("outcome") != "unreached",
                    community=_rating(form.get("community")),
                    worker=_rating(form.get("worker")),
                    committee=_rating(form.get("committee")),
                    note=str(form.get("note", "")).strip()[:500])
    try:
        async with state.app.deps.sm() as s, s.begin():
            answer, done = await chat.carry_out(s, state.app.deps, ctx,
                                                chat.Said(result)), True
    except Refused as no:
        answer, done = str(no), False
    state.app.deps.wake_outbox()
    return aiohttp_jinja2.render_template("callback_done.html", request, {
        "number": number, "answer": answer, "done": done})
