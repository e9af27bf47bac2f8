"""Signing in with a one-time link, and signing out.

Opening the link shows a button; only pressing it uses the link. Chat apps open links in
the background to preview them, which would otherwise use the link before its owner does.
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session

from bot.notify.texts import t
from handlers.web.context import DESK_KEY, current
from handlers.web.links import redeem
from handlers.web.security import csrf_ok, csrf_token
from models.people import Person


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/", home)
    desk.router.add_get("/login", login_page)
    desk.router.add_post("/login", login)
    desk.router.add_post("/logout", logout)


async def home(request: web.Request) -> web.StreamResponse:
    await current(request)
    raise web.HTTPFound("/desk/queue/unrouted")


async def login_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("t", "")[:128]
    return aiohttp_jinja2.render_template("login.html", request, {"token": token})


async def login(request: web.Request) -> web.StreamResponse:
    state = request.app[DESK_KEY]
    ip = request.remote or "?"
    if state.sign_ins.blocked(ip):
        return _refused(request, "desk.signin_slow", 429)
    if not await csrf_ok(request):
        state.sign_ins.strike(ip)
        return _refused(request, "desk.expired_form", 403)
    token = str((await request.post()).get("t", ""))
    async with state.app.deps.sm() as s, s.begin():
        link = await redeem(s, token, state.app.deps.clock())
        person = await s.get(Person, link.person_id) if link else None
    if link is None or person is None or not person.active:
        state.sign_ins.strike(ip)
        return _refused(request, "desk.signin_bad", 403)
    session = await new_session(request)  # never keep a session from before signing in
    session["person"], session["identity"] = link.person_id, link.identity_id
    session["at"] = state.app.deps.clock().timestamp()
    csrf_token(session)
    raise web.HTTPSeeOther("/desk/")


async def logout(request: web.Request) -> web.StreamResponse:
    if not await csrf_ok(request):
        return _refused(request, "desk.expired_form", 403)
    (await get_session(request)).invalidate()
    return aiohttp_jinja2.render_template("message.html", request,
                                          {"message": t("desk.signed_out")})


def _refused(request: web.Request, key: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template("message.html", request, {"message": t(key)},
                                          status=status)
