"""Grid workers and coordinators on a WeCom (企业微信) self-built app: the callback at
/wechat/wecom, and the sender the outbox delivers through (handlers/wecom/sender.py).

The callback
- GET answers WeCom's URL check: msg_signature over (token, timestamp, nonce, echostr), and
  the decrypted echostr back.
- POST carries <Encrypt> only (WeCom always encrypts); the receive id inside must be our corp.
- Refused before anything is stored: a wrong msg_signature (constant-time compare), a
  timestamp further than WECHAT_REPLAY_WINDOW_S from our clock, a body over 64 KiB, XML that
  is malformed or carries a DOCTYPE or entities, a message for another app (AgentID).
- The answer is always empty: every reply goes through the outbox as an app message. The
  request still waits (up to 4 s) for the core to commit, so a message WeCom was told it
  delivered is never lost; a retry of one in hand waits on the same task, and the core's
  inbound log drops a retry that comes later (messages by MsgId; card clicks by user, time
  and task).

What becomes what (chat = the member's userid, always a private chat)
- text, image, voice, video, location, link -> handlers/wechat/messages.py (as on the
  Official Account; words work: 接单 NUM …)
- events: template_card_event (a card's button) -> the core's action, then the card's
  buttons are greyed out showing the ticket's state; subscribe -> welcome; click on the
  app menu with key REPORT / MY_TICKETS / HELP -> as on the Official Account; anything else
  (enter_agent, …) -> nothing
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App
from bot.delivery.media import MediaStore
from bot.deps import Ctx
from bot.messages import Inbound
from bot.notify.texts import t
from config.settings import Settings
from handlers.wechat.callback import InHand, Refused, check_time, read_body, url_check
from handlers.wechat.messages import message_work
from handlers.wechat.oa import HELP_KEYS, MY_KEYS, MY_WORDS, REPORT_KEYS, REPORT_WORD
from handlers.wechat.signing import BadSignature, Cipher
from handlers.wechat.xml import BadXML, parse
from handlers.wecom.api import WeComClient
from handlers.wecom.cards import unpack
from handlers.wecom.sender import WeComSender
from handlers.wecom.texts import invite_hint
from models.db import make_engine, make_sessionmaker
from models.enums import Channel, ChatKind
from models.tickets import Ticket

log = logging.getLogger(__name__)

CH = Channel.WECOM.value
PATH = "/wechat/wecom"
CARD_EVENT = "template_card_event"


Work = Callable[[], Awaitable[None]]


class WeComApp:
    def __init__(self, *, corp_id: str, secret: str, agent_id: int, token: str, aes_key: str,
                 api_base: str, timeout: float, replay_window: int, media: MediaStore | None,
                 database_url: str) -> None:
        self.corp_id, self.agent_id = corp_id, agent_id
        try:
            self.cipher = Cipher(token, aes_key, corp_id)
        except Exception:
            raise ValueError("WECOM_AES_KEY is not a 43-character EncodingAESKey") from None
        self._window = replay_window
        self._engine: AsyncEngine = make_engine(database_url)  # serves only the tokens
        self.api = WeComClient(api_base, corp_id, secret, make_sessionmaker(self._engine),
                               timeout)
        self.sender = WeComSender(self.api, agent_id, media)
        self._in_hand = InHand("wecom")

    @classmethod
    def from_settings(cls, settings: Settings) -> WeComApp | None:
        s = settings
        if not (s.wecom_corp_id and s.wecom_secret and s.wecom_agent_id and s.wecom_token
                and s.wecom_aes_key):
            return None
        return cls(corp_id=s.wecom_corp_id, secret=s.wecom_secret.get_secret_value(),
                   agent_id=s.wecom_agent_id, token=s.wecom_token.get_secret_value(),
                   aes_key=s.wecom_aes_key.get_secret_value(), api_base=s.wecom_api_base,
                   timeout=s.wechat_http_timeout_s, replay_window=s.wechat_replay_window_s,
                   media=MediaStore(s.media_root(), s.media_max_bytes),
                   database_url=s.database_url)

    def invite_hint(self, code: str) -> str:
        return invite_hint(code)

    # -- as a handlers.serve.Edge ------------------------------------------------------

    name = CH

    async def prepare(self) -> None:
        """Nothing to reach first (the first send fetches the token)."""

    def follow_link(self, number: str) -> str | None:
        return None

    def mount(self, web_app: web.Application, app: App) -> None:
        web_app.add_routes(self.routes(app))

    async def run(self, app: App) -> None:
        await app.stop.wait()
        await self._in_hand.finish()

    async def close(self) -> None:
        await self._in_hand.finish()
        await self.api.close()
        await self._engine.dispose()

    def routes(self, app: App) -> list[web.RouteDef]:
        health = app.health.channel(CH, "webhook")

        verify = url_check(self.cipher, self._window, lambda: app.deps.clock().timestamp(),
                           health.ok, "wecom")

        async def receive(request: web.Request) -> web.Response:
            try:
                msg = await self._open(request, app)
            except Refused as e:
                log.warning("wecom: callback refused (%s)", e)
                health.skip()
                return web.Response(status=e.status, text="refused")
            health.ok()
            planned = self._plan(app, msg)
            if planned is not None:
                try:
                    await self._in_hand.run(*planned)
                except Exception:  # logged where the task ended; WeCom retries
                    return web.Response(status=500, text="error")
            return web.Response(text="")

        return [web.get(PATH, verify), web.post(PATH, receive)]

    async def _open(self, request: web.Request, app: App) -> dict[str, str]:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        check_time(timestamp, app.deps.clock().timestamp(), self._window)
        try:
            encrypted = parse(await read_body(request)).get("Encrypt", "")
            if not encrypted:
                raise Refused(400, "no Encrypt element")
            msg = parse(self.cipher.decrypt(encrypted, q.get("msg_signature", ""), timestamp,
                                            nonce))
        except BadSignature as e:
            raise Refused(403, str(e)) from None
        except BadXML as e:
            raise Refused(400, f"not a WeCom message ({e})") from None
        agent = msg.get("AgentID", "")
        if agent and agent != str(self.agent_id):
            raise Refused(403, "a message for another app")
        return msg

    # -- what each message becomes ------------------------------------------------------

    def _plan(self, app: App, msg: dict[str, str]) -> tuple[str, Callable[[], Any]] | None:
        """(the key a retry is known by, the work); None when nothing is to be done."""
        userid = msg.get("FromUserName", "")
        kind = msg.get("MsgType", "").lower()
        if not userid:
            return None
        if kind == "event":
            event = msg.get("Event", "")
            mid = f"ev{msg.get('CreateTime', '')}:{event}:{msg.get('TaskId', '')}"
            ctx = Ctx(CH, userid, userid, userid, ChatKind.PRIVATE, mid)
            work = self._event(app, msg, event, ctx)
            return (f"{userid}:{mid}:{msg.get('EventKey', '')}", work) if work else None
        msg_id = msg.get("MsgId", "")
        if not msg_id:
            return None
        ctx = Ctx(CH, userid, userid, userid, ChatKind.PRIVATE, msg_id)

        work = message_work(app, self.api, msg, ctx, t("wecom.media_kept", ctx.lang))
        return (msg_id, work) if work is not None else None

    def _event(self, app: App, msg: dict[str, str], event: str,
               ctx: Ctx) -> Callable[[], Any] | None:
        core = app.core
        key = msg.get("EventKey", "").strip()

        def said(text: str) -> Inbound:
            return Inbound(channel=CH, external_id=f"{ctx.chat_id}:{ctx.message_id}",
                           chat_id=ctx.chat_id, chat_kind=ChatKind.PRIVATE,
                           sender_id=ctx.user_id, sender_name=ctx.user_name, text=text,
                           message_id=ctx.message_id, received_at=app.deps.clock())

        async def click() -> None:
            await self._card_click(app, ctx, key, msg.get("ResponseCode", ""))

        async def say(text: str) -> None:
            await core.on_message(said(text))

        if event == CARD_EVENT:
            return click
        if event == "subscribe":
            return lambda: core.on_start(ctx, "")
        if event == "click" and key in REPORT_KEYS:
            return lambda: say(REPORT_WORD)
        if event == "click" and key in MY_KEYS:
            return lambda: say(MY_WORDS)
        if event == "click" and key in HELP_KEYS:
            return lambda: core.on_help(ctx)
        return None

    async def _card_click(self, app: App, ctx: Ctx, key: str, response_code: str) -> None:
        action = unpack(key)
        if action is None:  # forged or foreign: refuse, change nothing
            await app.core.on_notice(ctx, t("worker.not_allowed", ctx.lang))
            return
        _answer, ok = await app.core.on_action(ctx, action, key=f"wecom:{ctx.message_id}",
                                               in_chat=True)
        if not ok:
            return
        if response_code:
            async with app.deps.reader()() as s:
                state = await s.scalar(select(Ticket.state).where(Ticket.id == action.ticket_id))
            if state is not None:
                await self.sender.update_card(ctx.user_id, response_code,
                                              t(f"state.{state}", ctx.lang))
