"""Residents on the WeChat Official Account (公众号): the server callback at /wechat/oa, and the
sender the outbox delivers through (handlers/wechat/oa_sender.py).

The callback
- GET answers WeChat's URL check: a signature over (token, timestamp, nonce), echostr back.
- POST takes messages and events in plaintext, compatible or safe mode, decided per request:
  with encrypt_type=aes the body's Encrypt must match msg_signature, and only what it decrypts
  to is believed (compatible mode's plaintext copy is not signed).
- Refused before anything is stored: a wrong signature or msg_signature (constant-time
  compare), a timestamp further than WECHAT_REPLAY_WINDOW_S from our clock, a body over
  64 KiB, XML that is malformed or carries a DOCTYPE or entities; in plaintext mode also a
  signature already seen with another body (the body is not signed there; remembered in this
  process only).

Answering within WeChat's 5 seconds: each message runs as a task and the request waits up to
ANSWER_WITHIN for it. If the core finished, the passive reply carries its answer: the outbox
rows the core queued for this resident, taken in one conditional update (pending -> sent) so
the outbox never sends them too, and only when they are all of that chat's unsent rows, were
queued after the message came, have no photo and together fit one message. Otherwise the
answer is `success` and the outbox delivers them as customer-service messages.

WeChat retries a message it got no answer to (three times): a retry of one still in hand
here waits on the same task and gets the same reply; elsewhere the core's inbound log drops
it (messages by MsgId, events by FromUserName + CreateTime + Event).

What becomes what (chat = the resident's OpenID, always a private chat)
- text, image, voice, video, location, link -> handlers/wechat/messages.py (as on WeCom)
- events: subscribe -> welcome (with a parametric QR code: its scene, as below); SCAN ->
  the scene: an invite code, or t_<ticket number> to follow a ticket; CLICK with key REPORT
  (我要报事) -> how to report, MY_TICKETS (我的工单) -> the person's tickets, HELP (使用说明)
  -> the core's help; unsubscribe and anything else -> nothing
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import UpdateBase

from bot.app import App
from bot.delivery.choices import remember as remember_choices
from bot.delivery.media import MediaStore
from bot.delivery.render import render
from bot.deps import Ctx
from bot.messages import Action, Inbound, Outbound
from bot.notify.texts import t
from config.settings import Settings
from handlers.wechat.api import OAClient
from handlers.wechat.callback import Refused, check_time, read_body
from handlers.wechat.messages import message_work
from handlers.wechat.oa_sender import TEXT_BYTES, OASender, TemplateSpec
from handlers.wechat.signing import BadSignature, Cipher, check
from handlers.wechat.xml import BadXML, parse, text_reply
from models.db import TxRunner, make_engine, make_sessionmaker
from models.enums import Channel, ChatKind, OutboxStatus
from models.tickets import Outbox

log = logging.getLogger(__name__)

CH = Channel.WECHAT.value
PATH = "/wechat/oa"
ANSWER_WITHIN = 4.0  # WeChat gives up (and retries) after 5 s
KEEP_ANSWER_S = 60.0  # WeChat's retries come within about 15 s
SEEN_SIGNATURES = 10_000
SUCCESS = "success"
PASSIVE_ROWS = 4  # the most of the core's messages one passive reply joins up
FINISH_WITHIN = 10.0  # at shutdown, how long messages in hand may take

REPORT_KEYS = frozenset({"REPORT", "我要报事"})
MY_KEYS = frozenset({"MY_TICKETS", "我的工单"})
HELP_KEYS = frozenset({"HELP", "使用说明"})
REPORT_WORD = "报事"  # the menu's 我要报事 is the same as typing it: the core asks what and where
MY_WORDS = "我的工单"

def invite_hint(code: str) -> str:
    """How a staff member redeems `code` on the Official Account (one line, for `invite`)."""
    return t("invite.wechat_oa", "zh", code=code)


class _Lost(Exception):
    """A row meant for the passive reply was claimed by the outbox first."""



@dataclass(eq=False)
class _Job:
    """One message in hand: the core's work, and the passive reply once it is decided."""

    after: int = 0  # the newest outbox row before the core saw the message
    task: asyncio.Task[None] | None = None
    decided: bool = False
    reply: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True, slots=True)
class _Db:
    """Every message reads twice and most claim their reply: each is one hop to a thread
    with its own connection (models.db.TxRunner), not a statement-by-statement session."""

    reads: TxRunner
    writes: TxRunner


@dataclass(frozen=True, slots=True)
class _Request:
    msg: dict[str, str]
    aes: bool
    nonce: str


Work = Callable[[], Awaitable[None]]


class OfficialAccount:
    def __init__(self, *, appid: str, secret: str, token: str, aes_key: str | None,
                 api_base: str, timeout: float, replay_window: int,
                 template: TemplateSpec | None, media: MediaStore | None, tz: ZoneInfo,
                 database_url: str) -> None:
        self.appid = appid
        self._token = token
        try:
            self.cipher = Cipher(token, aes_key, appid) if aes_key else None
        except Exception:
            raise ValueError("WECHAT_OA_AES_KEY is not a 43-character EncodingAESKey") from None
        self._window = replay_window
        # tokens are shared through the database; this engine serves only them
        self._engine: AsyncEngine = make_engine(database_url)
        self.api = OAClient(api_base, appid, secret, make_sessionmaker(self._engine), timeout)
        self.sender = OASender(self.api, media, template, tz)
        self._runners: _Db | None = None
        self._jobs: dict[str, _Job] = {}
        self._seen: dict[tuple[str, str, str], tuple[bytes, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> OfficialAccount | None:
        """None when the account is not configured (WECHAT_OA_APPID, _SECRET and _TOKEN)."""
        if not (settings.wechat_oa_appid and settings.wechat_oa_secret
                and settings.wechat_oa_token):
            return None
        template = (TemplateSpec.parse(settings.wechat_oa_template_id,
                                       settings.wechat_oa_template_fields)
                    if settings.wechat_oa_template_id else None)
        aes = settings.wechat_oa_aes_key
        return cls(
            appid=settings.wechat_oa_appid,
            secret=settings.wechat_oa_secret.get_secret_value(),
            token=settings.wechat_oa_token.get_secret_value(),
            aes_key=aes.get_secret_value() if aes else None,
            api_base=settings.wechat_api_base, timeout=settings.wechat_http_timeout_s,
            replay_window=settings.wechat_replay_window_s, template=template,
            media=MediaStore(settings.media_root(), settings.media_max_bytes),
            tz=ZoneInfo(settings.timezone), database_url=settings.database_url)

    def invite_hint(self, code: str) -> str:
        return invite_hint(code)

    # -- as a handlers.serve.Edge ------------------------------------------------------

    name = CH

    async def prepare(self) -> None:
        """Nothing to reach first: the only call without a token is fetching one, and that
        would replace the token other processes use (the first send fetches it)."""

    def follow_link(self, number: str) -> str | None:
        return None  # the account's chat cannot be opened by a link; a QR scene can follow

    def mount(self, web_app: web.Application, app: App) -> None:
        web_app.add_routes(self.routes(app))

    async def run(self, app: App) -> None:
        await app.stop.wait()
        await self.finish()

    async def finish(self) -> None:
        """Let messages in hand reach the core. Stop the web server first, then call this,
        then `App.close()` (whose outbox still sends through this account), then `close()`."""
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=FINISH_WITHIN)

    async def close(self) -> None:
        """Close the HTTP session and the token engine (after `finish` and `App.close`)."""
        await self.finish()
        await self.api.close()
        if self._runners is not None:
            await self._runners.reads.close()
            await self._runners.writes.close()
        await self._engine.dispose()

    def routes(self, app: App) -> list[web.RouteDef]:
        health = app.health.channel(CH, "webhook")

        async def verify(request: web.Request) -> web.Response:
            q = request.query
            try:
                check_time(q.get("timestamp", ""), app.deps.clock().timestamp(), self._window)
                check((self._token, q.get("timestamp", ""), q.get("nonce", "")),
                      q.get("signature", ""))
            except (Refused, BadSignature) as e:
                log.warning("wechat: URL check refused (%s)", e)
                return web.Response(status=403, text="forbidden")
            health.ok()
            return web.Response(text=q.get("echostr", ""))

        async def receive(request: web.Request) -> web.Response:
            try:
                req = await self._open(request, app)
            except Refused as e:
                log.warning("wechat: callback refused (%s)", e)
                health.skip()
                return web.Response(status=e.status, text="refused")
            health.ok()
            try:
                reply = await self._answer(app, req.msg)
            except Exception:  # logged with its traceback where the task ended
                return web.Response(status=500, text="error")
            if reply is None:
                return web.Response(text=SUCCESS)
            now = int(app.deps.clock().timestamp())
            xml = text_reply(req.msg.get("FromUserName", ""), req.msg.get("ToUserName", ""),
                             reply, now)
            if req.aes and self.cipher is not None:
                xml = self.cipher.encrypt(xml, req.nonce, str(now))
            return web.Response(text=xml, content_type="application/xml")

        return [web.get(PATH, verify), web.post(PATH, receive)]

    # -- refusing -------------------------------------------------------------------------

    async def _open(self, request: web.Request, app: App) -> _Request:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        check_time(timestamp, app.deps.clock().timestamp(), self._window)
        aes = q.get("encrypt_type", "raw").lower() == "aes"
        try:
            if not aes:  # the cheap check first: no body is read for a forged request
                check((self._token, timestamp, nonce), q.get("signature", ""))
            elif "signature" in q:
                check((self._token, timestamp, nonce), q["signature"])
            body = await read_body(request)
            if not aes:
                self._not_replayed((timestamp, nonce, q.get("signature", "")), body)
                return _Request(parse(body), False, nonce)
            if self.cipher is None:
                raise Refused(403, "safe mode, but WECHAT_OA_AES_KEY is not set")
            encrypted = parse(body).get("Encrypt", "")
            if not encrypted:
                raise Refused(400, "no Encrypt element")
            inner = self.cipher.decrypt(encrypted, q.get("msg_signature", ""), timestamp,
                                        nonce)
            return _Request(parse(inner), True, nonce)
        except BadSignature as e:
            raise Refused(403, str(e)) from None
        except BadXML as e:
            raise Refused(400, f"not a WeChat message ({e})") from None

    def _not_replayed(self, key: tuple[str, str, str], body: bytes) -> None:
        digest = hashlib.sha256(body).digest()
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and seen[1] > now and seen[0] != digest:
            raise Refused(403, "a used signature with another body")
        if len(self._seen) >= SEEN_SIGNATURES:
            self._seen = {k: v for k, v in self._seen.items() if v[1] > now}
            while len(self._seen) >= SEEN_SIGNATURES:
                del self._seen[next(iter(self._seen))]
        self._seen[key] = (digest, now + 2 * max(self._window, 300))

    # -- answering --------------------------------------------------------------------

    async def _answer(self, app: App, msg: dict[str, str]) -> str | None:
        """The passive reply for `msg`, or None for `success` (the outbox answers)."""
        planned = self._plan(app, msg)
        if planned is None:
            return None
        key, work = planned
        job = self._jobs.get(key)
        if job is None:
            job = _Job()
            job.task = asyncio.create_task(self._run(app, job, work), name=f"wechat {key}")
            self._jobs[key] = job
            job.task.add_done_callback(lambda task: self._finished(key, job, task))
        assert job.task is not None
        done, _ = await asyncio.wait({job.task}, timeout=ANSWER_WITHIN)
        if not done:
            return None
        if job.task.exception() is not None:
            raise RuntimeError("the core failed on this message") from job.task.exception()
        async with job.lock:
            if not job.decided:
                job.reply = await self._take_reply(app, msg.get("FromUserName", ""), job.after)
                job.decided = True
        return job.reply

    async def _run(self, app: App, job: _Job, work: Work) -> None:
        job.after = await self._db(app).reads(_newest_row)
        await work()

    def _finished(self, key: str, job: _Job, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._jobs.pop(key, None)
            return
        failure = task.exception()
        if failure is not None:
            log.error("wechat: a message could not be handled", exc_info=failure)
            # WeChat's retry must run it again
            if self._jobs.get(key) is job:
                del self._jobs[key]
            return

        def forget() -> None:
            if self._jobs.get(key) is job:
                del self._jobs[key]
        asyncio.get_running_loop().call_later(KEEP_ANSWER_S, forget)

    async def _take_reply(self, app: App, openid: str, after: int) -> str | None:
        """The core's answer to this resident, if one passive reply can carry it.

        Every unsent row of the chat must have been queued after the message arrived (so
        nothing older is overtaken), be without photos, and all of them together fit one
        message once fitted to the channel, with numbered choices from one row at most.
        That is decided on a read; then they are marked sent, only if all are still pending,
        in a write transaction of its own: the outbox never sends them too.
        """
        try:
            found = await self._passive(app, openid, after)
        except (KeyError, TypeError, ValueError):
            log.warning("wechat: an outbox row could not be read for a passive reply")
            return None
        if found is None:
            return None
        ids, reply, offered = found
        now = app.deps.clock()
        try:
            if offered:  # rare (a question with choices): the choices go in the same commit
                async with app.deps.sm() as s, s.begin():
                    _check_taken(ids, await s.scalars(_claim(ids, now)))
                    await remember_choices(s, CH, openid, None, offered, now)
            else:
                # one hop to the writer thread: held as briefly as the write lock can be
                await self._db(app).writes(
                    lambda conn: _check_taken(ids, conn.scalars(_claim(ids, now))))
        except _Lost:
            return None
        return reply

    def _db(self, app: App) -> _Db:
        if self._runners is None:
            self._runners = _Db(TxRunner(app.engine, reads_only=True), TxRunner(app.engine))
        return self._runners

    async def _passive(self, app: App, openid: str, after: int
                       ) -> tuple[list[int], str, list[Action]] | None:
        """(the rows, their text, the choices offered) a passive reply would carry, if any."""
        rows = await self._db(app).reads(lambda conn: _unsent_rows(conn, openid))
        if not rows or len(rows) > PASSIVE_ROWS:
            return None
        caps = self.sender.capabilities
        texts: list[str] = []
        offers: list[list[Action]] = []
        for row_id, status, chat_kind, payload, ticket_id in rows:
            if row_id <= after or status != OutboxStatus.PENDING.value \
                    or chat_kind != ChatKind.PRIVATE.value:
                return None
            msg = Outbound.from_row(CH, openid, chat_kind, ticket_id, dict(payload))
            if msg.photos:
                return None
            parts, offered = render(msg, caps)
            texts += [p.text for p in parts]
            if offered:
                offers.append(offered)
        reply = "\n\n".join(texts)
        if len(offers) > 1 or len(reply.encode()) > TEXT_BYTES:
            return None
        return [r[0] for r in rows], reply, offers[0] if offers else []

    # -- what each message becomes ------------------------------------------------------

    def _plan(self, app: App, msg: dict[str, str]) -> tuple[str, Work] | None:
        """(the key a retry is known by, the work) for `msg`; None when nothing is to be done."""
        openid = msg.get("FromUserName", "")
        kind = msg.get("MsgType", "").lower()
        if not openid:
            return None
        name = t("wechat.user", tail=openid[-4:])
        if kind == "event":
            event = msg.get("Event", "").lower()
            mid = f"ev{msg.get('CreateTime', '')}:{event}"
            work = self._event(app, msg, event, Ctx(CH, openid, name, openid, ChatKind.PRIVATE,
                                                    mid))
            return (f"{openid}:{mid}", work) if work is not None else None
        msg_id = msg.get("MsgId", "")
        if not msg_id:
            return None
        ctx = Ctx(CH, openid, name, openid, ChatKind.PRIVATE, msg_id)

        work = message_work(app, self.api, msg, ctx, t("wechat.media_kept", ctx.lang))
        return (msg_id, work) if work is not None else None

    def _event(self, app: App, msg: dict[str, str], event: str, ctx: Ctx) -> Work | None:
        core = app.core
        key = msg.get("EventKey", "").strip()

        def said(text: str) -> Inbound:
            return Inbound(channel=CH, external_id=f"{ctx.chat_id}:{ctx.message_id}",
                           chat_id=ctx.chat_id, chat_kind=ChatKind.PRIVATE,
                           sender_id=ctx.user_id, sender_name=ctx.user_name, text=text,
                           message_id=ctx.message_id, received_at=app.deps.clock())

        if event == "subscribe":
            scene = key.removeprefix("qrscene_") if key.startswith("qrscene_") else ""
            return lambda: core.on_start(ctx, scene)
        if event == "scan" and key:
            return lambda: core.on_start(ctx, key)
        if event == "click" and key in REPORT_KEYS:
            return _discard(core.on_message, said(REPORT_WORD))
        if event == "click" and key in MY_KEYS:
            return _discard(core.on_message, said(MY_WORDS))
        if event == "click" and key in HELP_KEYS:
            return lambda: core.on_help(ctx)
        return None  # unsubscribe, menu links, reported locations, template receipts



def _newest_row(conn: Connection) -> int:
    return conn.scalar(select(func.max(Outbox.id))) or 0


def _unsent_rows(conn: Connection, openid: str
                 ) -> Sequence[Row[int, str, str, dict[str, object], int | None]]:
    return conn.execute(
        select(Outbox.id, Outbox.status, Outbox.chat_kind, Outbox.payload, Outbox.ticket_id)
        .where(Outbox.channel == CH, Outbox.chat_id == openid,
               Outbox.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]))
        .order_by(Outbox.id).limit(PASSIVE_ROWS + 1)).all()


def _claim(ids: list[int], now: datetime) -> UpdateBase:
    """Rows `ids` sent as a passive reply, each only if still pending (not the outbox's)."""
    return (update(Outbox).where(Outbox.id.in_(ids),
                                 Outbox.status == OutboxStatus.PENDING.value)
            .values(status=OutboxStatus.SENT.value, sent_at=now, attempts=Outbox.attempts + 1,
                    lease_until=None, last_error=None)
            .returning(Outbox.id).execution_options(synchronize_session=False))


def _check_taken(ids: list[int], taken: Iterable[int]) -> None:
    if len(list(taken)) != len(ids):
        raise _Lost  # the outbox claimed one meanwhile: leave them all to it (rolled back)


def _discard(fn: Callable[[Inbound], Awaitable[Any]], ib: Inbound) -> Work:
    async def run() -> None:
        await fn(ib)
    return run
