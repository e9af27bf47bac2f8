"""A fake WeChat Official Account API on 127.0.0.1, for tests (aiohttp, in the test's loop).

Point the channel at it with ``WECHAT_API_BASE=api.base_url``. It issues access tokens, takes
customer-service and template messages and media uploads, serves media downloads, and keeps
every call. Faults: ``fail(path, errcode, times, touser)`` answers the next calls of a path
(to one person, if given) with that errcode (45015 outside the window, 45047 over the quota,
40001 a bad token, ...);
``expire_tokens()`` makes every token issued so far invalid, as a refresh elsewhere would.

What reaches each resident is in ``log`` as (openid, text) in arrival order; a test harness
adds the passive replies it received to the same list, so the order is the resident's.

Menus it accepted (menu/create) are in ``menus``, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Self

import filetype
from aiohttp import web

from handlers.http import start_site

CUSTOM = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"
UPLOAD = "/cgi-bin/media/upload"
MEDIA_GET = "/cgi-bin/media/get"
TOKEN = "/cgi-bin/token"
MENU_CREATE = "/cgi-bin/menu/create"
TEXT_BYTES = 2048


@dataclass
class Call:
    path: str
    params: dict[str, str]
    body: dict[str, Any] | None = None
    errcode: int = 0


@dataclass
class FakeWeChatAPI:
    appid: str
    secret: str
    calls: list[Call] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    custom: list[dict[str, Any]] = field(default_factory=list)  # accepted, in order
    templates: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    menus: list[dict[str, Any]] = field(default_factory=list)  # accepted menu/create bodies
    token_fetches: int = 0
    delay: float = 0.0  # seconds each message send takes (a slow or hanging API)
    _valid: set[str] = field(default_factory=set)
    _faults: list[tuple[str, str | None, int]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get(TOKEN, self._token)
        app.router.add_post(CUSTOM, self._custom)
        app.router.add_post(TEMPLATE, self._template)
        app.router.add_post(UPLOAD, self._upload)
        app.router.add_get(MEDIA_GET, self._media_get)
        app.router.add_post(MENU_CREATE, self._create_menu)
        self._runner = await start_site(app, "127.0.0.1", 0)
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- test controls ----------------------------------------------------------------

    def fail(self, path: str, errcode: int, times: int = 1, touser: str | None = None) -> None:
        """The next `times` calls of `path` (to `touser`, if given) get `errcode`."""
        self._faults += [(path, touser, errcode)] * times

    def expire_tokens(self) -> None:
        self._valid.clear()

    def put_media(self, data: bytes) -> str:
        """Something a resident sent, held on WeChat's side under a new MediaId."""
        media_id = f"MEDIA{next(self._ids):06d}"
        self.media[media_id] = data
        return media_id

    def texts(self, openid: str) -> list[str]:
        return [text for who, text in self.log if who == openid]

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    # -- endpoints --------------------------------------------------------------------

    def _refuse(self, call: Call) -> web.Response | None:
        """The WeChat error this call gets: a bad token first, then an injected fault."""
        code = 0
        to = (call.body or {}).get("touser")
        if call.params.get("access_token") not in self._valid:
            code = 40001
        else:
            for i, (path, touser, errcode) in enumerate(self._faults):
                if path == call.path and touser in (None, to):
                    code = errcode
                    del self._faults[i]
                    break
        if not code:
            return None
        call.errcode = code
        return web.json_response({"errcode": code, "errmsg": f"fake error {code}"})

    async def _token(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        call = Call(TOKEN, {k: ("***" if k == "secret" else v) for k, v in q.items()})
        self.calls.append(call)
        if q.get("grant_type") != "client_credential" or q.get("appid") != self.appid \
                or q.get("secret") != self.secret:
            call.errcode = 40125
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_fetches += 1
        token = f"TOKEN{self.token_fetches:04d}-" + "x" * 100
        self._valid.add(token)
        return web.json_response({"access_token": token, "expires_in": 7200})

    async def _custom(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if self.delay:
            await asyncio.sleep(self.delay)
        call = Call(CUSTOM, dict(request.query), body)
        self.calls.append(call)
        refused = self._refuse(call)
        if refused is not None:
            return refused
        openid, kind = body.get("touser", ""), body.get("msgtype")
        if kind == "text":
            content = body["text"]["content"]
            if len(content.encode()) > TEXT_BYTES:
                return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
            self.log.append((openid, content))
        elif kind == "image":
            if body["image"]["media_id"] not in self.media:
                return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
            self.log.append((openid, f"[image {body['image']['media_id']}]"))
        else:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.custom.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _template(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        call = Call(TEMPLATE, dict(request.query), body)
        self.calls.append(call)
        refused = self._refuse(call)
        if refused is not None:
            return refused
        self.templates.append(body)
        fields = " ".join(f"{k}={v['value']}" for k, v in body.get("data", {}).items())
        self.log.append((body.get("touser", ""), f"[template] {fields}"))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": next(self._ids)})

    async def _upload(self, request: web.Request) -> web.Response:
        call = Call(UPLOAD, dict(request.query))
        self.calls.append(call)
        refused = self._refuse(call)
        if refused is not None:
            return refused
        form = await request.post()
        part = form.get("media")
        data = part.file.read() if isinstance(part, web.FileField) else b""
        if not data:
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        media_id = self.put_media(data)
        return web.json_response({"type": request.query.get("type"), "media_id": media_id,
                                  "created_at": 1700000000})

    async def _media_get(self, request: web.Request) -> web.Response:
        call = Call(MEDIA_GET, dict(request.query))
        self.calls.append(call)
        refused = self._refuse(call)
        if refused is not None:
            return refused
        data = self.media.get(request.query.get("media_id", ""))
        if data is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        kind = filetype.guess(data)
        return web.Response(body=data,
                            content_type=kind.mime if kind else "application/octet-stream")

    async def _create_menu(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        call = Call(MENU_CREATE, dict(request.query), body)
        self.calls.append(call)
        refused = self._refuse(call)
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not body.get("button"):
            call.errcode = 40016
            return web.json_response({"errcode": 40016, "errmsg": "invalid button size"})
        self.menus.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
