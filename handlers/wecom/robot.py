"""Staff groups through the WeCom smart robot (智能机器人, API mode): the callback at
/wechat/wecom/robot, and the sender (handlers/wecom/robot_sender.py).

The callback
- GET answers the URL check: msg_signature over (token, timestamp, nonce, echostr), and the
  decrypted echostr back.
- POST takes JSON {"encrypt": ...}, sealed with the robot's EncodingAESKey as WeCom apps are
  (WXBizMsgCrypt), with an empty receiveid. Only what it decrypts to is believed.
- Refused before anything is stored: a wrong msg_signature (constant-time compare), a
  timestamp further than WECHAT_REPLAY_WINDOW_S from our clock, a body over 64 KiB, a body or
  an inner message that is not the JSON expected.
- The answer is an empty 200 once the core has the message (or after 4 s, while it
  goes on): replies go through the message's response_url, from the outbox.

What becomes what
- The robot hears a group only when it is @-mentioned; the leading "@name" is cut off. A
  group message is a report or a staff command (接单 NUM …) from that group, as on Telegram;
  "/bind CODE" (or 绑定 CODE) binds the group to a grid or community. A single chat is a
  private chat; an invite code there is redeemed.
- text, voice (WeCom's transcript) and the text parts of mixed messages; images inside mixed
  messages and files are not fetched (they come as URLs with their own keys).
- Every message's response_url is kept (robot_reply_urls) before the core sees it, so the
  outbox can answer. A redelivered msgid adds nothing: the URL table and the core's inbound
  log are both keyed by it.

People: the robot reports WeCom userids, the same ones the WeCom app knows. The robot has its
own channel ("wecom_robot"); someone bound on the app ("wecom") is linked to the same person
the first time they speak here, without a private chat (staff are reached through the app,
which can write first; the robot cannot).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.deps import Ctx
from bot.messages import Inbound
from bot.notify.texts import t
from bot.sqlutil import insert_for
from config.settings import Settings
from handlers.wechat.callback import InHand, Refused, Work, check_time, read_body, url_check
from handlers.wechat.signing import BadSignature, Cipher
from handlers.wecom import texts_robot  # noqa: F401  (registers the texts)
from handlers.wecom.robot_sender import CH, URL_LIFETIME, RobotSender
from models.enums import Channel, ChatKind
from models.people import Identity
from models.robot import RobotReplyUrl

log = logging.getLogger(__name__)

PATH = "/wechat/wecom/robot"
RECEIVE_ID = ""  # WeCom's documented receiveid for an enterprise's own smart robot
MAX_BODY = 64 * 1024  # as the Official Account takes

_MENTION = re.compile(r"^\s*@\S+\s*")
_BIND = re.compile(r"(?:/bind|绑定)(?:[\s:：]+(\S*))?\s*", re.IGNORECASE)




class SmartRobot:
    name = CH

    def __init__(self, *, token: str, aes_key: str, replay_window: int, timeout: float) -> None:
        try:
            self.cipher = Cipher(token, aes_key, RECEIVE_ID)
        except Exception:
            raise ValueError("WECOM_ROBOT_AES_KEY is not a 43-character EncodingAESKey") from None
        self._window = replay_window
        self.sender = RobotSender(timeout)
        self._in_hand = InHand("wecom robot")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmartRobot | None:
        """None unless WECOM_ROBOT_TOKEN and WECOM_ROBOT_AES_KEY are both set."""
        if not (settings.wecom_robot_token and settings.wecom_robot_aes_key):
            return None
        return cls(token=settings.wecom_robot_token.get_secret_value(),
                   aes_key=settings.wecom_robot_aes_key.get_secret_value(),
                   replay_window=settings.wechat_replay_window_s,
                   timeout=settings.wechat_http_timeout_s)

    # -- as a handlers.serve.Edge ------------------------------------------------------

    async def prepare(self) -> None:
        """Nothing to reach: the robot has no API of its own besides each response_url."""

    def follow_link(self, number: str) -> str | None:
        return None

    def mount(self, web_app: web.Application, app: App) -> None:
        self.sender.bind(app.deps.sm, app.deps.clock)
        web_app.add_routes(self.routes(app))

    async def run(self, app: App) -> None:
        await app.stop.wait()
        await self.finish()

    async def finish(self) -> None:
        """Let messages in hand reach the core (stop the web server first)."""
        await self._in_hand.finish()

    async def close(self) -> None:
        await self.finish()
        await self.sender.close()

    def routes(self, app: App) -> list[web.RouteDef]:
        health = app.health.channel(CH, "webhook")

        verify = url_check(self.cipher, self._window, lambda: app.deps.clock().timestamp(),
                           health.ok, "wecom robot")

        async def receive(request: web.Request) -> web.Response:
            try:
                msg = await self._open(request, app)
                planned = self._plan(app, msg)
            except Refused as e:
                log.warning("wecom robot: callback refused (%s)", e)
                health.skip()
                return web.Response(status=e.status, text="refused")
            health.ok()
            if planned is None:
                return web.Response(text="")
            try:
                await self._in_hand.run(*planned)
            except Exception:  # logged where the task ended; WeCom may try again
                return web.Response(status=500, text="error")
            return web.Response(text="")

        return [web.get(PATH, verify), web.post(PATH, receive)]

    # -- refusing -------------------------------------------------------------------------

    async def _open(self, request: web.Request, app: App) -> dict[str, Any]:
        q = request.query
        timestamp = q.get("timestamp", "")
        check_time(timestamp, app.deps.clock().timestamp(), self._window)
        outer = _json_object(await read_body(request, MAX_BODY), "body")
        encrypted = outer.get("encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise Refused(400, "no encrypt field")
        try:
            inner = self.cipher.decrypt(encrypted, q.get("msg_signature", ""), timestamp,
                                        q.get("nonce", ""))
        except BadSignature as e:
            raise Refused(403, str(e)) from None
        return _json_object(inner.encode(), "message")

    # -- what each message becomes ------------------------------------------------------

    def _plan(self, app: App, msg: dict[str, Any]) -> tuple[str, Work] | None:
        """(msgid, the work) for a message; None for what is not one (events). Refused when
        a message lacks what it needs."""
        text = _text_of(msg)
        if text is None:
            return None  # enter_chat, card clicks, feedback, files, lone images
        msgid, sender, chat = msg.get("msgid"), msg.get("from"), msg.get("chatid")
        userid = sender.get("userid") if isinstance(sender, dict) else None
        kind = msg.get("chattype")
        if not (isinstance(msgid, str) and msgid and isinstance(userid, str) and userid) \
                or kind not in ("group", "single") \
                or (kind == "group" and not (isinstance(chat, str) and chat)):
            raise Refused(400, "a message without msgid, sender or chat")
        group = kind == "group"
        chat_id = str(chat) if group else userid
        url = msg.get("response_url")
        if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            raise Refused(400, "a message without a response_url")
        if len(msgid) > 96 or len(userid) > 64 or len(chat_id) > 64:
            raise Refused(400, "ids longer than WeCom's")
        if group:
            text = _MENTION.sub("", text, count=1)

        async def work() -> None:
            name = await self._keep(app, msgid, chat_id, userid, url)
            ctx = Ctx(CH, userid, name, chat_id, ChatKind.GROUP if group else ChatKind.PRIVATE,
                      msgid)
            core = app.core
            bind = _BIND.fullmatch(text.strip()) if group else None
            if bind is not None:
                await core.on_bind(ctx, bind.group(1) or "",
                                   t("robot.group", tail=chat_id[-4:]))
            else:
                await core.on_message(Inbound(
                    channel=CH, external_id=msgid, chat_id=chat_id, chat_kind=ctx.chat_kind,
                    sender_id=userid, sender_name=name, text=text, message_id=msgid,
                    mentions_bot=group, received_at=app.deps.clock()))

        return msgid, work

    async def _keep(self, app: App, msgid: str, chat_id: str, userid: str, url: str) -> str:
        """Keep the message's response_url; link a WeCom app identity; the sender's name."""
        now = app.deps.clock()
        async with app.deps.sm() as s, s.begin():
            await s.execute(insert_for(s, RobotReplyUrl).values(
                chat_id=chat_id, msgid=msgid, url=url, expires_at=now + URL_LIFETIME,
                used_at=None, created_at=now,
            ).on_conflict_do_nothing(index_elements=["msgid"]))
            name = await _link_identity(s, userid, now)
        return name or t("robot.user", tail=userid[-4:])


async def _link_identity(s: AsyncSession, userid: str, now: datetime) -> str | None:
    """The person's name here; someone known to the WeCom app becomes known here too."""
    mine = await s.scalar(select(Identity.display_name).where(
        Identity.channel == CH, Identity.user_id == userid))
    if mine is not None:
        return mine or None
    theirs = (await s.execute(select(Identity.display_name, Identity.person_id,
                                     Identity.language)
                              .where(Identity.channel == Channel.WECOM.value,
                                     Identity.user_id == userid))).first()
    if theirs is None or theirs.person_id is None:
        return None
    await s.execute(insert_for(s, Identity).values(
        channel=CH, user_id=userid, display_name=theirs.display_name,
        person_id=theirs.person_id, language=theirs.language, private_chat_id=None,
        created_at=now,
    ).on_conflict_do_nothing(index_elements=["channel", "user_id"]))
    return theirs.display_name or None



def _text_of(msg: dict[str, Any]) -> str | None:
    kind = msg.get("msgtype")
    if kind in ("text", "voice"):
        part = msg.get(kind)
        content = part.get("content") if isinstance(part, dict) else None
        return content if isinstance(content, str) else None
    if kind == "mixed":
        mixed = msg.get("mixed")
        items = mixed.get("msg_item") if isinstance(mixed, dict) else None
        texts = [_text_of(i) for i in items if isinstance(i, dict)] \
            if isinstance(items, list) else []
        joined = "\n".join(x for x in texts if x)
        return joined or None
    return None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, f"the {what} is not a JSON object")
    return value

