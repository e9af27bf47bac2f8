"""The WeCom app as a test channel: the real callback over HTTP, the real sender, cards.

`wecom_stack` builds it: the fake WeCom API on 127.0.0.1, the real core on the test's SQLite
file with the WeCom sender (and any other senders given), and an aiohttp server with /healthz
and the app's routes. `WeComUsers` plays WeCom's side: it encrypts and signs what a member
sends, as WeCom does, and posts it; a click on a card button is a template_card_event with
that button's key and a fresh response code.

`WeComChannel` runs the contract stories with everyone in the app: staff redeem invite codes
by sending them, press card buttons, and use words.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from wechatpy.crypto import WeChatCrypto

from bot.app import App, build_app
from bot.messages import Sender
from config.settings import Settings
from handlers.wechat.xml import cdata, parse
from handlers.wecom.app import PATH, WeComApp
from tests.conftest import FakeClock
from tests.contract.channels import drain, invite_code, served
from tests.fakes.wecom_api import FakeWeCom

CORP_ID = "wx5823bf96d3bd56c7"  # the official sample's, so its vectors decrypt here too
SECRET = "fake-corp-secret-0123456789abcdef"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AGENT_ID = 1000002


@dataclass
class WeComStack:
    app: App
    wecom: WeComApp
    api: FakeWeCom
    url: str
    http: aiohttp.ClientSession
    clock: FakeClock


def wecom_settings(settings: Settings, api: FakeWeCom, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": settings.database_url, "wecom_corp_id": CORP_ID,
        "wecom_secret": SECRET, "wecom_agent_id": AGENT_ID, "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY, "wecom_api_base": api.base_url,
        "wechat_http_timeout_s": 5.0, "media_dir": settings.media_dir}
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def wecom_stack(settings: Settings, clock: FakeClock,
                      others: dict[str, Sender] | None = None,
                      mount: list[Any] | None = None, **kw: Any) -> AsyncIterator[WeComStack]:
    """`others`: more senders for the same core; `mount`: more edges on the same server (the
    stack closes them too)."""
    async with FakeWeCom(CORP_ID, SECRET, AGENT_ID) as api:
        s = wecom_settings(settings, api, **kw)
        wecom = WeComApp.from_settings(s)
        assert wecom is not None
        app = await build_app(s, {"wecom": wecom.sender, **(others or {})}, clock=clock)
        async with served(app, wecom, *(mount or [])) as (base, http):
            yield WeComStack(app, wecom, api, f"{base}{PATH}", http, clock)


@dataclass
class WeComUsers:
    """WeCom's side of the callback: what members send, encrypted and signed as WeCom does."""

    stack: WeComStack
    msg_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(4561255354251345001))
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1372623001))
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, CORP_ID))

    def now(self) -> int:
        return int(self.stack.clock().timestamp())

    def xml(self, userid: str, kind: str, fields: dict[str, str],
            created: int | None = None) -> str:
        body = "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items())
        mid = "" if kind == "event" else f"<MsgId>{next(self.msg_ids)}</MsgId>"
        return (f"<xml><ToUserName>{cdata(CORP_ID)}</ToUserName>"
                f"<FromUserName>{cdata(userid)}</FromUserName>"
                f"<CreateTime>{created or self.now()}</CreateTime>"
                f"<MsgType>{cdata(kind)}</MsgType>{body}{mid}"
                f"<AgentID>{AGENT_ID}</AgentID></xml>")

    def seal(self, xml: str, timestamp: int | None = None,
             nonce: str | None = None) -> tuple[bytes, dict[str, str]]:
        nonce = nonce or str(next(self.nonces))
        ts = str(self.now() if timestamp is None else timestamp)
        sealed = parse(self.crypto.encrypt_message(xml, nonce, ts))
        body = (f"<xml><ToUserName>{cdata(CORP_ID)}</ToUserName>"
                f"<Encrypt>{cdata(sealed['Encrypt'])}</Encrypt>"
                f"<AgentID>{cdata(str(AGENT_ID))}</AgentID></xml>")
        return body.encode(), {"msg_signature": sealed["MsgSignature"], "timestamp": ts,
                               "nonce": nonce}

    async def post(self, xml: str, **kw: Any) -> int:
        body, params = self.seal(xml, **kw)
        return await self.raw(body, params)

    async def raw(self, body: bytes, params: dict[str, str]) -> int:
        async with self.stack.http.post(self.stack.url, params=params, data=body) as r:
            await r.read()
            return r.status

    async def say(self, userid: str, text: str) -> int:
        return await self.post(self.xml(userid, "text", {"Content": text}))

    async def click(self, userid: str, card: dict[str, Any], key: str,
                    created: int | None = None) -> int:
        fields = {"Event": "template_card_event", "EventKey": key,
                  "TaskId": card["task_id"], "CardType": card["card_type"],
                  "ResponseCode": self.stack.api.response_code()}
        return await self.post(self.xml(userid, "event", fields, created=created))


def userid_of(who: str) -> str:
    return f"{who}-wecom"


def find_button(api: FakeWeCom, userid: str, label: str,
                about: str) -> tuple[dict[str, Any], str] | None:
    """The newest card shown to `userid` with a button for `label`, about `about`:
    (the card, the button's key)."""
    bodies = api.to(userid)
    for i in range(len(bodies) - 1, -1, -1):
        body = bodies[i]
        if body.get("msgtype") != "template_card":
            continue
        card = body["template_card"]
        before = bodies[i - 1] if i else {}
        shown = " ".join([str(card.get("main_title", {}).get("title", "")),
                          str(card.get("sub_title_text", "")),
                          str(before.get("text", {}).get("content", ""))
                          if before.get("msgtype") == "text" else ""])
        if about not in shown:
            continue
        for b in card["button_list"]:
            if b["text"] == label:
                return card, b["key"]
    return None


class WeComChannel:
    """Everyone in the WeCom app, each in their own chat with it."""

    name = "wecom"

    def __init__(self, stack: WeComStack) -> None:
        self.stack, self.app = stack, stack.app
        self.users = WeComUsers(stack)

    async def join(self, who: str) -> None:
        assert await self.users.say(userid_of(who), await invite_code(self.app, who)) == 200
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        assert await self.users.say(userid_of(who), text) == 200

    async def choose(self, who: str, label: str, about: str) -> None:
        found = find_button(self.stack.api, userid_of(who), label, about)
        if found is not None:
            assert await self.users.click(userid_of(who), *found) == 200
            return
        for text in reversed(self.heard(who)):  # more choices than a card holds: numbers
            numbered = re.search(rf"^(\d+)\. {re.escape(label)}$", text, re.M)
            if numbered and about in text:
                await self.say(who, numbered.group(1))
                return
        raise AssertionError(f"no choice {label!r} shown to {who}: {self.heard(who)}")

    def heard(self, who: str) -> list[str]:
        return self.stack.api.texts(userid_of(who))

    async def deliver(self) -> None:
        await drain(self.app, self.stack.clock)
