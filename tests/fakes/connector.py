"""A fake group-chat connector on 127.0.0.1, the other end of the bridge (aiohttp, in the
test's loop).

It takes the service's outbound messages at ``callback_url``, checks each one's signature as a
real connector should (a forged or stale one is answered 401 and counted in ``refused``), and
keeps the good ones in ``received``. ``fail(status, times)`` answers the next posts with that
status first (a 5xx to be retried, a 4xx to be given up on). It also hosts files for media a
person sends: ``file(name, data)`` returns their URL; an unknown name is a 404.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from handlers.bridge.signing import SIGNATURE, TIMESTAMP, BadSignature, verify
from handlers.http import start_site


@dataclass
class FakeConnector:
    secret: bytes
    now: Callable[[], float] = time.time
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    posts: int = 0
    tried_ids: list[str] = field(default_factory=list)  # the id of every signed post, refused too
    refused: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    fetches: int = 0  # file downloads asked for
    base_url: str = ""
    _faults: list[int] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/callback"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/callback", self._callback)
        app.router.add_get("/files/{name}", self._file)
        self._runner = await start_site(app, "127.0.0.1", 0)
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, status: int, times: int = 1) -> None:
        self._faults += [status] * times

    def file(self, name: str, data: bytes) -> str:
        self.files[name] = data
        return f"{self.base_url}/files/{name}"

    def texts(self, chat_id: str) -> list[str]:
        return [m["text"] for m in self.received if m["chat_id"] == chat_id]

    async def _callback(self, request: web.Request) -> web.Response:
        self.posts += 1
        body = await request.read()
        try:
            verify(self.secret, request.headers.get(TIMESTAMP, ""),
                   request.headers.get(SIGNATURE, ""), body, self.now())
        except BadSignature:
            self.refused += 1
            return web.json_response({"error": "bad signature"}, status=401)
        self.tried_ids.append(str(json.loads(body).get("id")))
        if self._faults:
            return web.json_response({"error": "fault"}, status=self._faults.pop(0))
        self.headers.append(dict(request.headers))
        self.received.append(json.loads(body))
        return web.json_response({"message_id": f"c-{next(self._ids)}"})

    async def _file(self, request: web.Request) -> web.Response:
        self.fetches += 1
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")
