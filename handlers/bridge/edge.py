"""The bridge as a channel of `serve`: POST /bridge/v1/messages in, BridgeSender out.

A request is refused before anything is stored when its body is over 256 KiB (413), its
timestamp is outside 300 seconds of our clock or its signature does not match (401), or it is
not a bridge message (400: malformed JSON, a missing or ill-typed field). A message already
seen (chat id + id in the core's inbound log) answers 200 with `"duplicate": true` and does
nothing more; two copies at once are told apart by the core, which logs each key once.

What becomes what
- in a group: `/bind CODE` binds the chat to a grid or community (Core.on_bind)
- in private: `/start [CODE]`, an invite code alone, or after 绑定 / 邀请码 (Core.on_start)
- `/help`, `/cancel`, `/queue` as on Telegram; anything else is a message to the core
  (words, numbered choices, reports), with its media fetched into the store first
The answer follows the core's commit, so a connector that sees 200 may forget the message; on
a 5xx or no answer it posts it again and the inbound log keeps the effect single.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from sqlalchemy import CursorResult, select

from bot.app import App
from bot.delivery.media import MediaStore
from bot.deps import Ctx
from bot.messages import GeoPoint, Inbound
from bot.notify.texts import t
from bot.sqlutil import insert_for
from config.settings import Settings
from handlers.bridge import capabilities, texts  # noqa: F401  (registers the texts)
from handlers.bridge.inbound import BadMessage, Message, parse
from handlers.bridge.media import MediaFetcher, media_route
from handlers.bridge.sender import CH, MEDIA_PATH, BridgeSender
from handlers.bridge.signing import SIGNATURE, TIMESTAMP, BadSignature, verify
from handlers.wechat.callback import Refused, read_body
from models.enums import ChatKind
from models.tickets import InboundLog, SentMessage

log = logging.getLogger(__name__)

PATH = "/bridge/v1/messages"
MAX_BODY = 256 * 1024
SEND_TIMEOUT_S = 10.0
FINISH_WITHIN = 10.0
_MENTION = re.compile(r"^@\S+\s+")  # "@网格助手 /bind FN-02" (WeChat puts U+2005 after it)
_COMMAND = re.compile(r"/(bind|start|help|cancel|queue)(?:@\S+)?(?:\s+(\S+))?\s*",
                      re.IGNORECASE)



class BridgeEdge:
    name = CH

    def __init__(self, *, secret: bytes, callback_url: str | None,
                 declared: capabilities.Declared, media: MediaStore | None,
                 public_url: str = "") -> None:
        self._secret = secret
        self.declared = declared
        self.sender = BridgeSender(callback_url=callback_url, secret=secret,
                                   capabilities=declared.capabilities,
                                   timeout=SEND_TIMEOUT_S, public_url=public_url)
        self.fetcher = MediaFetcher(media)
        self._store = media
        self._in_hand: set[asyncio.Task[web.Response]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeEdge | None:
        """None when BRIDGE_SECRET is not set; ValueError for a malformed BRIDGE_CAPABILITIES."""
        if settings.bridge_secret is None:
            return None
        secret = settings.bridge_secret.get_secret_value()
        if len(secret) < 16:
            raise ValueError("BRIDGE_SECRET must be at least 16 characters")
        if not settings.bridge_callback_url:
            log.warning("bridge: BRIDGE_CALLBACK_URL is not set; nothing can be sent out")
        return cls(secret=secret.encode(), callback_url=settings.bridge_callback_url,
                   declared=capabilities.parse(settings.bridge_capabilities),
                   media=MediaStore(settings.media_root(), settings.media_max_bytes),
                   public_url=settings.bridge_public_url)

    # -- as a handlers.serve.Edge ------------------------------------------------------

    async def prepare(self) -> None:
        """Nothing to reach: the connector may start after us (the outbox retries)."""

    def follow_link(self, number: str) -> str | None:
        return None  # a connector's chats cannot be opened by a link

    def mount(self, web_app: web.Application, app: App) -> None:
        self.sender.attach(app.deps.sm, app.deps.clock)
        web_app.add_routes(self.routes(app))

    async def run(self, app: App) -> None:
        await app.stop.wait()
        await self.finish()

    async def finish(self) -> None:
        """Let messages in hand reach the core (after the web server stopped taking more)."""
        if self._in_hand:
            await asyncio.wait(self._in_hand, timeout=FINISH_WITHIN)

    async def close(self) -> None:
        await self.finish()
        await self.fetcher.close()
        await self.sender.close()

    def routes(self, app: App) -> list[web.RouteDef]:
        health = app.health.channel(CH, "webhook", success="message")

        async def receive(request: web.Request) -> web.Response:
            # shielded: a connector hanging up must not cut a message off half-handled
            task = asyncio.create_task(self._receive(request, app))
            self._in_hand.add(task)
            task.add_done_callback(self._in_hand.discard)
            response = await asyncio.shield(task)
            if response.status == 200:
                health.ok()
            return response

        def now() -> float:
            return app.deps.clock().timestamp()

        return [web.post(PATH, receive), media_route(MEDIA_PATH, self._store, self._secret, now)]

    async def _receive(self, request: web.Request, app: App) -> web.Response:
        try:
            body = await read_body(request, MAX_BODY)
            verify(self._secret, request.headers.get(TIMESTAMP, ""),
                   request.headers.get(SIGNATURE, ""), body, app.deps.clock().timestamp())
            msg = parse(body)
        except Refused as e:
            return _refused(e.status, str(e))
        except BadSignature as e:
            return _refused(401, str(e))
        except BadMessage as e:
            return _refused(400, str(e))
        try:
            # media are fetched before the core sees the message: look first, not to fetch twice
            duplicate = (bool(msg.media) and await self._seen(app, msg)) \
                or await self._handle(app, msg)
        except Exception:
            log.exception("bridge: a message could not be handled")
            return web.json_response({"ok": False, "error": "not handled; post it again"},
                                     status=503)
        return web.json_response({"ok": True, "duplicate": True} if duplicate else {"ok": True})

    async def _seen(self, app: App, msg: Message) -> bool:
        async with app.deps.reader()() as s:
            return await s.scalar(select(InboundLog.id).where(
                InboundLog.channel == CH, InboundLog.external_id == msg.key)) is not None

    async def _handle(self, app: App, msg: Message) -> bool:
        """Hand `msg` to the core; True when the core had seen it (nothing was done)."""
        core = app.core
        kind = ChatKind.GROUP if msg.chat.kind == "group" else ChatKind.PRIVATE
        name = msg.sender.name.strip() or t("bridge.user", tail=msg.sender.id[-4:])
        ctx = Ctx(CH, msg.sender.id, name, msg.chat.id, kind, msg.id)
        text = _MENTION.sub("", msg.text.strip(), count=1) if msg.mentions_bot \
            else msg.text.strip()
        command = _COMMAND.fullmatch(text) if not msg.media and msg.location is None else None
        if command is not None:
            await self._command(app, ctx, msg, command.group(1).lower(), command.group(2) or "")
            return False
        media = await self.fetcher.fetch(msg.media)
        loc = msg.location
        ib = Inbound(
            channel=CH, external_id=msg.key, chat_id=msg.chat.id, chat_kind=kind,
            sender_id=msg.sender.id, sender_name=name, text=text,
            location=GeoPoint(loc.lat, loc.lon, loc.datum) if loc else None, media=media,
            message_id=msg.id, reply_to_message_id=msg.reply_to,
            reply_to_bot=await self._replies_to_bot(app, msg),
            mentions_bot=msg.mentions_bot, received_at=app.deps.clock())
        return (await core.on_message(ib)).kind == "duplicate"

    async def _command(self, app: App, ctx: Ctx, msg: Message, cmd: str, arg: str) -> None:
        core = app.core
        group = ctx.chat_kind == ChatKind.GROUP
        actions: dict[str, Callable[[], Awaitable[object]]] = {
            "help": lambda: core.on_help(ctx),
            "cancel": lambda: _cancel(app, ctx),
        }
        if group:
            actions["bind"] = lambda: core.on_bind(ctx, arg, msg.chat.title)
        else:
            actions["start"] = lambda: core.on_start(ctx, arg)
            actions["queue"] = lambda: core.on_queue(ctx)
        act = actions.get(cmd)
        # on_bind and on_start log the message themselves; these answer only the first copy
        if act is not None and (cmd in ("bind", "start") or await _first_time(app, ctx, msg)):
            await act()

    async def _replies_to_bot(self, app: App, msg: Message) -> bool:
        """An answer to one of our cards (the only messages whose ids we keep)."""
        if not msg.reply_to:
            return False
        async with app.deps.reader()() as s:
            return await s.scalar(select(SentMessage.ticket_id).where(
                SentMessage.channel == CH, SentMessage.chat_id == msg.chat.id,
                SentMessage.message_id == msg.reply_to)) is not None


async def _first_time(app: App, ctx: Ctx, msg: Message) -> bool:
    async with app.deps.sm() as s, s.begin():
        done = await s.execute(insert_for(s, InboundLog).values(
            channel=CH, external_id=msg.key, chat_id=ctx.chat_id, sender_id=ctx.user_id,
            media=[], has_media=False, received_at=app.deps.clock(),
        ).on_conflict_do_nothing(index_elements=["channel", "external_id"]))
        return bool(cast(CursorResult[Any], done).rowcount)


async def _cancel(app: App, ctx: Ctx) -> None:
    await app.core.cancel_pending(ctx)
    await app.core.on_help(ctx)



def _refused(status: int, why: str) -> web.Response:
    log.warning("bridge: refused a request (%s: %s)", status, why)
    return web.json_response({"ok": False, "error": why}, status=status)
