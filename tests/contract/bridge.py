"""The bridge as a test channel: the real /bridge/v1/messages over HTTP, the real sender, and a
fake connector on 127.0.0.1 that checks what the service signs.

`bridge_stack` builds it: the connector, the real core on the test's SQLite file with
`senders={"bridge": edge.sender}`, and an aiohttp server with /healthz and the bridge's routes.
`Connector` plays the connector's side: it signs what a person says in a chat and posts it.

`BridgeChannel` runs the contract stories with numbered choices (BRIDGE_CAPABILITIES buttons=0):
residents report in one group chat, staff redeem invite codes in their private chats and act
in words or by number.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.app import App, build_app
from config.settings import Settings
from handlers.bridge.edge import PATH, BridgeEdge
from handlers.bridge.signing import sign
from tests.conftest import FakeClock
from tests.contract.channels import RESIDENTS, drain, invite_code, served
from tests.fakes.connector import FakeConnector

SECRET = "bridge-test-secret-0123456789"
GROUP = "g-bridge-1"


@dataclass
class BridgeStack:
    app: App
    edge: BridgeEdge
    connector: FakeConnector
    base: str
    http: aiohttp.ClientSession
    clock: FakeClock

    @property
    def url(self) -> str:
        return self.base + PATH


def bridge_settings(settings: Settings, connector: FakeConnector, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": settings.database_url, "bridge_secret": SECRET,
        "bridge_callback_url": connector.callback_url,
        "bridge_capabilities": "buttons=0,quoting=1,max_text=2000,per_minute=20"}
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def bridge_stack(settings: Settings, clock: FakeClock, **kw: Any
                       ) -> AsyncIterator[BridgeStack]:
    async with FakeConnector(SECRET.encode(), now=lambda: clock().timestamp()) as connector:
        s = bridge_settings(settings, connector, **kw)
        edge = BridgeEdge.from_settings(s)
        assert edge is not None
        app = await build_app(s, {"bridge": edge.sender}, clock=clock)
        async with served(app, edge) as (base, http):
            yield BridgeStack(app, edge, connector, base, http, clock)


@dataclass
class Posted:
    status: int
    body: dict[str, Any]


@dataclass
class Connector:
    """The connector's side of /bridge/v1/messages: people's messages, signed."""

    stack: BridgeStack
    secret: bytes = SECRET.encode()
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def message(self, chat: str, who: str, text: str = "", *, kind: str = "group",
                name: str = "", **more: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {"id": f"m{next(self.ids)}",
                               "chat": {"id": chat, "kind": kind, "title": "测试群"},
                               "sender": {"id": who, "name": name or who}, **more}
        if text:
            msg["text"] = text
        return msg

    async def post(self, msg: dict[str, Any] | bytes, *, timestamp: int | None = None,
                   secret: bytes | None = None, headers: dict[str, str] | None = None
                   ) -> Posted:
        body = msg if isinstance(msg, bytes) else json.dumps(msg, ensure_ascii=False).encode()
        ts = int(self.stack.clock().timestamp()) if timestamp is None else timestamp
        signed = sign(secret or self.secret, ts, body) if headers is None else headers
        async with self.stack.http.post(self.stack.url, data=body, headers={
                "Content-Type": "application/json", **signed}) as r:
            status = r.status
            text = await r.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"raw": text}
        return Posted(status, answer)

    async def say(self, chat: str, who: str, text: str, *, kind: str = "group",
                  name: str = "") -> Posted:
        return await self.post(self.message(chat, who, text, kind=kind, name=name))


class BridgeChannel:
    """Residents in one group, staff in their own private chats, all through the bridge."""

    name = "bridge"

    def __init__(self, stack: BridgeStack) -> None:
        self.stack, self.app = stack, stack.app
        self.connector = Connector(stack)

    def _chat(self, who: str) -> tuple[str, str]:
        return (GROUP, "group") if who in RESIDENTS else (f"p-{who}", "private")

    async def join(self, who: str) -> None:
        await self.say(who, f"/start {await invite_code(self.app, who)}")
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        chat, kind = self._chat(who)
        posted = await self.connector.say(chat, who, text, kind=kind,
                                          name=RESIDENTS.get(who, who))
        assert posted.status == 200, posted

    async def choose(self, who: str, label: str, about: str) -> None:
        for text in reversed(self.heard(who)):
            found = re.search(rf"^(\d+)\. {re.escape(label)}$", text, re.M)
            if found and about in text:
                await self.say(who, found.group(1))
                return
        raise AssertionError(f"no choice {label!r} shown to {who}: {self.heard(who)}")

    def heard(self, who: str) -> list[str]:
        return self.stack.connector.texts(self._chat(who)[0])

    async def deliver(self) -> None:
        await drain(self.app, self.stack.clock)
