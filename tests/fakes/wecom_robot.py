"""WeCom's robot endpoints on 127.0.0.1, for tests (aiohttp, in the test's loop).

- The smart robot's response_url (/cgi-bin/aibot/response?response_code=...): `response_url()`
  issues one; each answers one POST, as WeCom's do; a second use gets USED_ERRCODE.
- The group robot webhook (/cgi-bin/webhook/send?key=...): `webhook_url` for KEY.

Every accepted message is kept in `replies` (smart robot, with its response code) or `posts`
(webhook). Faults: `fail(path, errcode, times)` answers the next calls with that errcode (45009
the rate limit), `fail_http(path, status, times)` with an HTTP status (a 5xx).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from handlers.http import start_site

RESPONSE = "/cgi-bin/aibot/response"
WEBHOOK = "/cgi-bin/webhook/send"
KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
WEBHOOK_MARKDOWN_BYTES = 4096
USED_ERRCODE = 600001  # not WeCom's documented code: the fake's "this URL was used"


@dataclass
class FakeWeComRobots:
    replies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (code, body)
    posts: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # paths, in order, faults included
    base_url: str = ""
    _codes: dict[str, bool] = field(default_factory=dict)  # response code -> used
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _faults: list[tuple[str, int, int]] = field(default_factory=list)  # (path, errcode, http)
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(RESPONSE, self._response)
        app.router.add_post(WEBHOOK, self._webhook)
        self._runner = await start_site(app, "127.0.0.1", 0)
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self) -> str:
        code = f"RC{next(self._ids):06d}"
        self._codes[code] = False
        return f"{self.base_url}{RESPONSE}?response_code={code}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}{WEBHOOK}?key={KEY}"

    def fail(self, path: str, errcode: int, times: int = 1) -> None:
        self._faults += [(path, errcode, 200)] * times

    def fail_http(self, path: str, status: int, times: int = 1) -> None:
        self._faults += [(path, 0, status)] * times

    def texts(self) -> list[str]:
        return [b["markdown"]["content"] for _code, b in self.replies]

    def posted(self) -> list[str]:
        return [b["markdown"]["content"] for b in self.posts]

    def _fault(self, path: str) -> web.Response | None:
        self.calls.append(path)
        for i, (p, errcode, status) in enumerate(self._faults):
            if p == path:
                del self._faults[i]
                if status != 200:
                    return web.Response(status=status, text="busy")
                return web.json_response({"errcode": errcode, "errmsg": "fault"})
        return None

    async def _response(self, request: web.Request) -> web.Response:
        fault = self._fault(RESPONSE)
        if fault is not None:
            return fault
        code = request.query.get("response_code", "")
        if code not in self._codes:
            return web.json_response({"errcode": 40058, "errmsg": "invalid response_code"})
        if self._codes[code]:
            return web.json_response({"errcode": USED_ERRCODE, "errmsg": "used"})
        body = await _markdown(request)
        if body is None:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        self._codes[code] = True
        self.replies.append((code, body))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _webhook(self, request: web.Request) -> web.Response:
        fault = self._fault(WEBHOOK)
        if fault is not None:
            return fault
        if request.query.get("key") != KEY:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await _markdown(request)
        if body is None:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        if len(body["markdown"]["content"].encode()) > WEBHOOK_MARKDOWN_BYTES:
            return web.json_response({"errcode": 40058, "errmsg": "content exceed max length"})
        self.posts.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


async def _markdown(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    content = body.get("markdown", {}).get("content") if isinstance(body, dict) else None
    if body.get("msgtype") != "markdown" or not isinstance(content, str) or not content:
        return None
    return dict(body)
