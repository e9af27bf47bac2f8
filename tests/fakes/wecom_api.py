"""A fake WeCom (企业微信) server API on 127.0.0.1, for tests (aiohttp, in the test's loop).

Point a channel at it with ``WECOM_API_BASE=api.base_url``. It issues access tokens
(gettoken), takes app messages (message/send: text, image, template_card), card updates
(message/update_template_card), media uploads and downloads, and answers the directory's
user/getuserid (by mobile) from ``users``. Every call is kept in ``calls``.

Faults: ``fail(path, errcode, times)`` answers the next calls of a path with that errcode
(42001 an expired token, 45009 the API quota, ...); ``fail_http(path, status, times)`` with an
HTTP status (a 5xx); ``slow(path, seconds)`` delays every call of a path;
``expire_tokens()`` makes every token issued so far invalid.

More endpoints (居民上报's report/*, ...) are added by a subclass: override ``add_routes`` and
answer through ``self.guard(request, path)``, which records the call and applies the token
check and the faults.
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

TOKEN = "/cgi-bin/gettoken"
SEND = "/cgi-bin/message/send"
UPDATE_CARD = "/cgi-bin/message/update_template_card"
UPLOAD = "/cgi-bin/media/upload"
MEDIA_GET = "/cgi-bin/media/get"
GET_USERID = "/cgi-bin/user/getuserid"
TEXT_BYTES = 2048


@dataclass
class Call:
    path: str
    params: dict[str, str]
    body: Any = None
    errcode: int = 0


@dataclass
class FakeWeCom:
    corp_id: str
    secret: str
    agent_id: int = 1000002
    users: dict[str, str] = field(default_factory=dict)  # mobile -> userid
    calls: list[Call] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted message/send bodies
    updates: list[dict[str, Any]] = field(default_factory=list)  # accepted card updates
    media: dict[str, bytes] = field(default_factory=dict)
    token_fetches: int = 0
    base_url: str = ""
    _valid: set[str] = field(default_factory=set)
    _faults: list[tuple[str, int, int]] = field(default_factory=list)  # (path, errcode, http)
    _slow: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _codes: set[str] = field(default_factory=set)  # response codes not yet used
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get(TOKEN, self._token)
        app.router.add_post(SEND, self._send)
        app.router.add_post(UPDATE_CARD, self._update_card)
        app.router.add_post(UPLOAD, self._upload)
        app.router.add_get(MEDIA_GET, self._media_get)
        app.router.add_post(GET_USERID, self._get_userid)
        self.add_routes(app)
        self._runner = await start_site(app, "127.0.0.1", 0)
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_routes(self, app: web.Application) -> None:
        """Subclasses add their endpoints here."""

    # -- test controls ----------------------------------------------------------------

    def fail(self, path: str, errcode: int, times: int = 1) -> None:
        self._faults += [(path, errcode, 200)] * times

    def fail_http(self, path: str, status: int = 502, times: int = 1) -> None:
        self._faults += [(path, 0, status)] * times

    def slow(self, path: str, seconds: float) -> None:
        self._slow[path] = seconds

    def expire_tokens(self) -> None:
        self._valid.clear()

    def put_media(self, data: bytes) -> str:
        """Something a user sent, held on WeCom's side under a new MediaId."""
        media_id = f"WMEDIA{next(self._ids):06d}"
        self.media[media_id] = data
        return media_id

    def response_code(self) -> str:
        """A code as a card click event carries, good for one card update."""
        code = f"RC{next(self._ids):06d}"
        self._codes.add(code)
        return code

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path and not c.errcode]

    def to(self, userid: str) -> list[dict[str, Any]]:
        """The accepted app messages one user got, in order."""
        return [b for b in self.sent if userid in str(b.get("touser", "")).split("|")]

    def texts(self, userid: str) -> list[str]:
        out: list[str] = []
        for b in self.to(userid):
            kind = b.get("msgtype")
            if kind == "text":
                out.append(b["text"]["content"])
            elif kind == "template_card":
                card = b["template_card"]
                out.append(" ".join(str(x) for x in (
                    card.get("main_title", {}).get("title", ""),
                    card.get("main_title", {}).get("desc", ""),
                    card.get("sub_title_text", ""),
                    " ".join(b.get("text", "") for b in card.get("button_list", [])))))
            else:
                out.append(f"[{kind}]")
        return out

    # -- answering ----------------------------------------------------------------------

    async def guard(self, request: web.Request, path: str) -> tuple[Call, web.Response | None]:
        """Record the call; the refusal it gets (bad token, injected fault), if any."""
        body: Any = None
        if request.content_type == "application/json":  # a multipart upload is read later
            raw = await request.read()
            body = json.loads(raw) if raw else None
        call = Call(path, {k: v for k, v in request.query.items()}, body)
        self.calls.append(call)
        if path in self._slow:
            await asyncio.sleep(self._slow[path])
        if call.params.get("access_token") not in self._valid:
            call.errcode = 40014
            return call, web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        for i, (p, errcode, status) in enumerate(self._faults):
            if p == path:
                del self._faults[i]
                call.errcode = errcode or status
                if status != 200:
                    return call, web.Response(status=status, text="bad gateway")
                return call, web.json_response({"errcode": errcode,
                                                "errmsg": f"fake error {errcode}"})
        return call, None

    async def _token(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        call = Call(TOKEN, {k: ("***" if k == "corpsecret" else v) for k, v in q.items()})
        self.calls.append(call)
        if q.get("corpid") != self.corp_id or q.get("corpsecret") != self.secret:
            call.errcode = 40001
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.token_fetches += 1
        token = f"WTOKEN{self.token_fetches:04d}-" + "y" * 100
        self._valid.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token,
                                  "expires_in": 7200})

    async def _send(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, SEND)
        if refused is not None:
            return refused
        body = call.body or {}
        if body.get("agentid") != self.agent_id:
            call.errcode = 40056
            return web.json_response({"errcode": 40056, "errmsg": "invalid agentid"})
        kind = body.get("msgtype")
        if kind == "text" and len(body["text"]["content"].encode()) > TEXT_BYTES:
            call.errcode = 45002
            return web.json_response({"errcode": 45002, "errmsg": "content size out of limit"})
        if kind == "image" and body["image"]["media_id"] not in self.media:
            call.errcode = 40007
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        if kind == "template_card":
            card = body["template_card"]
            if card.get("card_type") != "button_interaction" or not card.get("task_id") \
                    or not 1 <= len(card.get("button_list", [])) <= 6:
                call.errcode = 40058
                return web.json_response({"errcode": 40058, "errmsg": "invalid card"})
        elif kind not in ("text", "image"):
            call.errcode = 40008
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "msgid": f"WMSG{next(self._ids):06d}",
                                  "response_code": self.response_code()
                                  if kind == "template_card" else ""})

    async def _update_card(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, UPDATE_CARD)
        if refused is not None:
            return refused
        body = call.body or {}
        code = body.get("response_code", "")
        if code not in self._codes:
            call.errcode = 40121  # used or unknown response code
            return web.json_response({"errcode": 40121, "errmsg": "invalid response_code"})
        self._codes.discard(code)
        self.updates.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _upload(self, request: web.Request) -> web.Response:
        _call, refused = await self.guard(request, UPLOAD)
        if refused is not None:
            return refused
        form = await request.post()
        part = form.get("media")
        data = part.file.read() if isinstance(part, web.FileField) else b""
        if not data:
            return web.json_response({"errcode": 41005, "errmsg": "media data missing"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": "image",
                                  "media_id": self.put_media(data), "created_at": "1700000000"})

    async def _media_get(self, request: web.Request) -> web.Response:
        _call, refused = await self.guard(request, MEDIA_GET)
        if refused is not None:
            return refused
        data = self.media.get(request.query.get("media_id", ""))
        if data is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        kind = filetype.guess(data)
        return web.Response(body=data,
                            content_type=kind.mime if kind else "application/octet-stream")

    async def _get_userid(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, GET_USERID)
        if refused is not None:
            return refused
        userid = self.users.get(str((call.body or {}).get("mobile", "")))
        if userid is None:
            call.errcode = 46004
            return web.json_response({"errcode": 46004, "errmsg": "user not found"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "userid": userid})
