"""What every desk page shares: the app, settings, links, and the signed-in person."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from bot.app import App
from config.settings import Settings
from handlers.web import staff as staff_mod
from handlers.web.links import Links
from handlers.web.security import IpWindow, signed_in
from handlers.web.staff import Staff
from handlers.web.uploads import Uploads


@dataclass
class DeskState:
    app: App
    settings: Settings
    links: Links
    sign_ins: IpWindow = field(default_factory=IpWindow)
    uploads: Uploads = field(default_factory=Uploads)  # county zips awaiting confirmation

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)


DESK_KEY = web.AppKey("desk", DeskState)


async def current(request: web.Request) -> Staff:
    """The signed-in person, as their records stand now; a redirect to sign in otherwise."""
    state = request.app[DESK_KEY]
    session = await get_session(request)
    who = signed_in(session, state.settings.desk_session_hours,
                    state.app.deps.clock().timestamp())
    staff = None
    if who is not None:
        async with state.app.deps.reader()() as s:
            staff = await staff_mod.load(s, *who)
    if staff is None:
        if request.headers.get("HX-Request"):
            raise web.HTTPUnauthorized(text="401")  # an htmx swap cannot follow a redirect
        raise web.HTTPFound("/desk/login")
    # what the context processors made for the page is read at render time
    request.setdefault(aiohttp_jinja2.REQUEST_CONTEXT_KEY, {})["staff"] = staff
    return staff


async def centre_only(request: web.Request) -> Staff:
    """The signed-in person if they are command-centre staff (phones, the county's files)."""
    staff = await current(request)
    if not staff.centre:
        raise web.HTTPForbidden
    return staff
