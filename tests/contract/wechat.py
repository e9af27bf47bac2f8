"""The WeChat Official Account as a test channel: the real callback over HTTP, the real sender.

`oa_stack` builds the whole thing: the fake WeChat API on 127.0.0.1, the real core on the test's
SQLite file with `senders={"wechat": oa.sender}`, and an aiohttp server with /healthz and the
account's routes. `WeChatUsers` plays WeChat's side of the callback: it signs (and in safe
mode encrypts) what a person sends, posts it, and reads the passive reply.

`WeChatChannel` runs the contract stories with everyone on the account: residents report in
their own chats, staff redeem invite codes by sending them as messages and act in words or by
numbered replies.
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
from config.settings import Settings
from handlers.wechat.oa import PATH, OfficialAccount
from handlers.wechat.signing import signature
from handlers.wechat.xml import cdata, parse
from tests.conftest import FakeClock
from tests.contract.channels import drain, invite_code, served
from tests.fakes.wechat_api import FakeWeChatAPI

APPID = "wx5823bf96d3bd56c7"
SECRET = "fake-app-secret-0123456789abcdef"
TOKEN = "grid-intake-token"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
OA_ID = "gh_0a1b2c3d4e5f"


@dataclass
class OAStack:
    app: App
    oa: OfficialAccount
    api: FakeWeChatAPI
    url: str
    http: aiohttp.ClientSession
    clock: FakeClock


def oa_settings(settings: Settings, api: FakeWeChatAPI, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": settings.database_url, "wechat_oa_appid": APPID,
        "wechat_oa_secret": SECRET, "wechat_oa_token": TOKEN, "wechat_oa_aes_key": AES_KEY,
        "wechat_api_base": api.base_url, "wechat_oa_template_id": "TPL-ticket-update",
        "wechat_http_timeout_s": 5.0}
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def oa_stack(settings: Settings, clock: FakeClock, **kw: Any) -> AsyncIterator[OAStack]:
    async with FakeWeChatAPI(kw.get("wechat_oa_appid", APPID), SECRET) as api:
        s = oa_settings(settings, api, **kw)
        oa = OfficialAccount.from_settings(s)
        assert oa is not None
        app = await build_app(s, {"wechat": oa.sender}, clock=clock)
        async with served(app, oa) as (base, http):
            yield OAStack(app, oa, api, f"{base}{PATH}", http, clock)


@dataclass
class Answer:
    status: int
    body: str
    text: str | None  # the passive reply's Content; None for `success`


@dataclass
class WeChatUsers:
    """WeChat's side of the callback: what people send, signed as WeChat signs it."""

    stack: OAStack
    mode: str = "aes"  # plain | compat | aes
    msg_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(7300000000000000001))
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(481327001))
    crypto: WeChatCrypto = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, APPID))

    def now(self) -> int:
        return int(self.stack.clock().timestamp())

    def xml(self, openid: str, kind: str, fields: dict[str, str], msg_id: int | None = None,
            created: int | None = None) -> str:
        body = "".join(f"<{k}>{cdata(v)}</{k}>" for k, v in fields.items())
        mid = "" if kind == "event" else f"<MsgId>{msg_id or next(self.msg_ids)}</MsgId>"
        return (f"<xml><ToUserName>{cdata(OA_ID)}</ToUserName>"
                f"<FromUserName>{cdata(openid)}</FromUserName>"
                f"<CreateTime>{created or self.now()}</CreateTime>"
                f"<MsgType>{cdata(kind)}</MsgType>{body}{mid}</xml>")

    async def post(self, xml: str, *, mode: str | None = None, timestamp: int | None = None,
                   nonce: str | None = None, forge: bool = False) -> Answer:
        mode = mode or self.mode
        nonce = nonce or str(next(self.nonces))  # WeChat's nonce is new for each request
        ts = str(self.now() if timestamp is None else timestamp)
        params = {"timestamp": ts, "nonce": nonce, "signature": signature(TOKEN, ts, nonce),
                  "openid": "ignored"}
        body = xml
        if mode in ("compat", "aes"):
            sealed = parse(self.crypto.encrypt_message(xml, nonce, ts))
            encrypted = f"<Encrypt>{cdata(sealed['Encrypt'])}</Encrypt>"
            # compatible mode sends the plaintext beside the encrypted copy
            body = xml.replace("</xml>", f"{encrypted}</xml>") if mode == "compat" else \
                f"<xml><ToUserName>{cdata(OA_ID)}</ToUserName>{encrypted}</xml>"
            params.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
        if forge:
            key = "msg_signature" if mode != "plain" else "signature"
            params[key] = "0" * 40
        return await self.raw(body.encode(), params)

    async def raw(self, body: bytes, params: dict[str, str]) -> Answer:
        async with self.stack.http.post(self.stack.url, params=params, data=body) as r:
            text = await r.text()
            status = r.status
        content = self.read_reply(text) if status == 200 and text != "success" else None
        return Answer(status, text, content)

    def read_reply(self, body: str) -> str | None:
        msg = parse(body)
        if "Encrypt" in msg:
            msg = parse(self.crypto.decrypt_message(body, msg["MsgSignature"], msg["TimeStamp"],
                                                    msg["Nonce"]))
        return msg.get("Content")

    async def say(self, openid: str, text: str, **kw: Any) -> Answer:
        answer = await self.post(self.xml(openid, "text", {"Content": text}), **kw)
        self.heard(openid, answer)
        return answer

    async def event(self, openid: str, event: str, key: str = "",
                    created: int | None = None) -> Answer:
        fields = {"Event": event, **({"EventKey": key} if key else {})}
        answer = await self.post(self.xml(openid, "event", fields, created=created))
        self.heard(openid, answer)
        return answer

    def heard(self, openid: str, answer: Answer) -> None:
        if answer.text is not None:
            self.stack.api.log.append((openid, answer.text))


def openid_of(who: str) -> str:
    return f"o6_bmjrPTlm6_2sgVt7hM{who:>7}".replace(" ", "0")


class WeChatChannel:
    """Everyone on the Official Account: residents and staff each in their own chat."""

    name = "wechat"

    def __init__(self, stack: OAStack) -> None:
        self.stack, self.app = stack, stack.app
        self.users = WeChatUsers(stack)

    async def join(self, who: str) -> None:
        await self.users.say(openid_of(who), await invite_code(self.app, who))
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        await self.users.say(openid_of(who), text)

    async def choose(self, who: str, label: str, about: str) -> None:
        for text in reversed(self.heard(who)):
            found = re.search(rf"^(\d+)\. {re.escape(label)}$", text, re.M)
            if found and about in text:
                await self.say(who, found.group(1))
                return
        raise AssertionError(f"no choice {label!r} shown to {who}: {self.heard(who)}")

    def heard(self, who: str) -> list[str]:
        return self.stack.api.texts(openid_of(who))

    async def deliver(self) -> None:
        await drain(self.app, self.stack.clock)
