"""The desk as an edge of `serve`: routes under /desk/ on the service's port, no chat."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import get_session, session_middleware

from bot.app import App
from bot.notify.texts import category_label, t
from config.settings import Settings
from handlers.web import (
    auth,
    callbacks_view,
    county_upload,
    county_view,
    map_view,
    queue_view,
    rates_view,
    ticket_view,
)
from handlers.web.context import DESK_KEY, DeskState
from handlers.web.links import Links
from handlers.web.security import csp, csrf_token, headers_middleware, storage

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


class Desk:
    name = "desk"
    sender = None  # the desk has no chat: what it does reaches people through the core

    def __init__(self, settings: Settings, secret: str) -> None:
        self.settings, self._secret = settings, secret

    @classmethod
    def from_settings(cls, settings: Settings) -> Desk | None:
        if settings.desk_secret_key is None:
            return None
        return cls(settings, settings.desk_secret_key.get_secret_value())

    async def prepare(self) -> None:
        pass

    def follow_link(self, number: str) -> str | None:
        return None

    def mount(self, web_app: web.Application, app: App) -> None:
        desk = build(app, self.settings, self._secret)
        web_app.router.add_get("/desk", _to_desk)  # before the sub-app, which would take it
        web_app.add_subapp("/desk/", desk)
        # 网页 and /desk in any chat: the core asks the desk for a link
        app.core.desk_link = desk[DESK_KEY].links.for_chat

    async def run(self, app: App) -> None:
        await app.stop.wait()

    async def close(self) -> None:
        pass


async def _to_desk(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/desk/")


def base_url(settings: Settings) -> str:
    return (settings.desk_base_url
            or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def build(app: App, settings: Settings, secret: str) -> web.Application:
    url = base_url(settings)
    hours = settings.desk_session_hours
    desk = web.Application(middlewares=[
        headers_middleware(csp(settings.map_tile_url)),
        session_middleware(storage(secret, hours, url.startswith("https://"))),
        _errors,
    ])
    desk[DESK_KEY] = DeskState(app, settings, Links(url, app.deps.clock))
    env = aiohttp_jinja2.setup(
        desk, loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True, context_processors=[_context], undefined=jinja2.StrictUndefined)
    env.globals.update(t=t, category_label=category_label)
    auth.add_routes(desk)
    queue_view.add_routes(desk)
    ticket_view.add_routes(desk)
    map_view.add_routes(desk)
    rates_view.add_routes(desk)
    callbacks_view.add_routes(desk)
    county_view.add_routes(desk)
    county_upload.add_routes(desk)
    desk.router.add_static("/static/", HERE / "static")
    desk[aiohttp_jinja2.static_root_key] = "/desk/static"
    return desk


async def _context(request: web.Request) -> dict[str, Any]:
    session = await get_session(request)
    state = request.app[DESK_KEY]
    return {"csrf": csrf_token(session), "staff": None,
            "html_lang": "en" if state.settings.language == "en" else "zh-CN"}


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Plain words for busy office staff; the traceback goes to the log only."""
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPException as e:
        if e.status < 400:
            raise
        key = {401: "desk.need_signin", 403: "desk.forbidden", 404: "desk.not_found",
               429: "desk.signin_slow"}.get(e.status, "desk.error")
        return _message(request, t(key), e.status)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("desk page %s failed", request.path)
        return _message(request, t("desk.error"), 500)


def _message(request: web.Request, text: str, status: int) -> web.Response:
    return aiohttp_jinja2.render_template("message.html", request, {"message": text},
                                          status=status)
