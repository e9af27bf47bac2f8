"""Sending through the WeCom smart robot (智能机器人): only by answering a message.

The robot cannot write to a chat on its own. Each message it receives carries a response_url
that may be POSTed to once, within an hour (WeCom's 主动回复消息). So an outbox row for a robot
chat goes out through that chat's newest unused response_url with some time left, kept in
`robot_reply_urls` by whichever process received the message. With none left the row is
Undeliverable, and the outbox tells the coordinator.

One URL, one message: rows due together for the chat (plain text: no choices, photos or
replies to remember) are joined into the first one's markdown message, up to its size. The
rows joined are marked coalesced after the POST; those this process's lane already holds are
remembered here, and when the lane reaches them they are reported sent without a POST.

A URL is marked used before the POST (two processes never spend it twice). A refused
connection or a 5xx gives it back for the retry; after a timeout it stays spent (WeCom may
have taken it), and the retry takes the next one.

Photos cannot go: markdown shows images only from a public URL, and the media store has none.
The text goes with a line saying so.

Nothing logged or raised carries a response_url: its response_code is the credential.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.capabilities import Capabilities
from bot.messages import (
    Outbound,
    PermanentSendError,
    RetryLater,
    TransientSendError,
    Undeliverable,
)
from bot.notify.texts import t
from handlers.wecom import texts_robot  # noqa: F401  (registers the texts)
from models.base import utcnow
from models.enums import Channel, OutboxStatus
from models.robot import RobotReplyUrl
from models.tickets import Outbox

log = logging.getLogger(__name__)

CH = Channel.WECOM_ROBOT.value
URL_LIFETIME = timedelta(hours=1)
# a URL this close to its end is not used: WeCom's hour starts when the person wrote
URL_MARGIN = timedelta(minutes=5)
MARKDOWN_BYTES = 20480  # markdown.content, UTF-8
# a row longer than this is split by the renderer, never joined (4 bytes a character at most)
MAX_TEXT = MARKDOWN_BYTES // 4
JOIN_ROWS = 10
RATE_LIMITED = 45009
BUSY_WAIT = 60.0
REMEMBER_JOINED_S = 600.0

CAPABILITIES = Capabilities(buttons=0, quoting=False, max_text=MAX_TEXT, window_hours=None,
                            templates=False, reusable_media=False, deep_links=False)

_PENDING, _SENDING = OutboxStatus.PENDING.value, OutboxStatus.SENDING.value


class PostFailed(Exception):
    """The platform answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg[:120]}")
        self.errcode = errcode


class NotSent(Exception):
    """The request surely did not go through (connection refused, 5xx)."""


class MaybeSent(Exception):
    """No answer in time: the platform may have taken it."""


async def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    """POST `body`; raise PostFailed, NotSent or MaybeSent. Never puts `url` in an error."""
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        async with http.post(url, data=data,
                             headers={"Content-Type": "application/json; charset=utf-8"}) as r:
            if r.status >= 500:
                raise NotSent(f"HTTP {r.status}")
            raw = await r.read()
            status = r.status
    except TimeoutError:
        raise MaybeSent("no answer in time") from None
    except aiohttp.ClientConnectorError as e:
        raise NotSent(type(e).__name__) from None
    except aiohttp.ClientError as e:
        raise MaybeSent(type(e).__name__) from None
    try:
        answer = json.loads(raw)
        errcode = int(answer.get("errcode", -1))
    except (ValueError, TypeError, AttributeError):
        raise PostFailed(-1, f"HTTP {status}, not JSON") from None
    if errcode != 0:
        raise PostFailed(errcode, str(answer.get("errmsg", "")))


class RobotSender:
    channel = CH
    capabilities = CAPABILITIES

    def __init__(self, timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._sm: async_sessionmaker[AsyncSession] | None = None
        self._clock: Callable[[], datetime] = utcnow
        self._locks: dict[str, asyncio.Lock] = {}
        # chat -> texts of held rows already delivered inside another row's message
        self._joined: dict[str, list[tuple[str, float]]] = {}

    def bind(self, sm: async_sessionmaker[AsyncSession], clock: Callable[[], datetime]) -> None:
        """The database the URLs are in, and the app's clock (before the outbox starts)."""
        self._sm, self._clock = sm, clock

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def send(self, msg: Outbound) -> str | None:
        if self._sm is None:
            raise TransientSendError("the robot is not mounted yet")
        if self._was_joined(msg.chat_id, msg.text):
            return None
        lock = self._locks.setdefault(msg.chat_id, asyncio.Lock())
        async with lock:
            url_id, url = await self._take_url(msg.chat_id)
            text, joined = await self._join(msg)
            body = {"msgtype": "markdown", "markdown": {"content": text}}
            try:
                await post_json(self._session(), url, body)
            except NotSent as e:
                await self._give_back(url_id)
                raise TransientSendError(str(e)) from None
            except MaybeSent as e:
                raise TransientSendError(f"{e}; it may have been delivered") from None
            except PostFailed as e:
                if e.errcode == RATE_LIMITED:
                    await self._give_back(url_id)
                    raise RetryLater(BUSY_WAIT, str(e)) from None
                raise PermanentSendError(str(e)) from None
            await self._mark_joined(msg, joined)
        return None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def _take_url(self, chat_id: str) -> tuple[int, str]:
        assert self._sm is not None
        now = self._clock()
        async with self._sm() as s, s.begin():
            for _ in range(3):  # another process may spend the one we saw
                row = (await s.execute(
                    select(RobotReplyUrl.id, RobotReplyUrl.url)
                    .where(RobotReplyUrl.chat_id == chat_id, RobotReplyUrl.used_at.is_(None),
                           RobotReplyUrl.expires_at > now + URL_MARGIN)
                    .order_by(RobotReplyUrl.expires_at.desc()).limit(1))).first()
                if row is None:
                    break
                took = await s.execute(
                    update(RobotReplyUrl)
                    .where(RobotReplyUrl.id == row.id, RobotReplyUrl.used_at.is_(None))
                    .values(used_at=now).returning(RobotReplyUrl.id))
                if took.first() is not None:
                    return row.id, row.url
        raise Undeliverable("no unused response_url for this chat within its hour: "
                            "nobody has @-mentioned the robot there lately")

    async def _give_back(self, url_id: int) -> None:
        assert self._sm is not None
        async with self._sm() as s, s.begin():
            await s.execute(update(RobotReplyUrl).where(RobotReplyUrl.id == url_id)
                            .values(used_at=None))

    async def _join(self, msg: Outbound) -> tuple[str, list[tuple[int, str, str]]]:
        """The markdown for `msg` and the rows due after it that fit in the same message:
        (id, status, text) of each."""
        assert self._sm is not None
        text = _content(msg)
        async with self._sm() as s:
            rows = (await s.execute(
                select(Outbox.id, Outbox.status, Outbox.payload)
                .where(Outbox.channel == CH, Outbox.chat_id == msg.chat_id,
                       Outbox.status.in_([_PENDING, _SENDING]))
                .order_by(Outbox.id).limit(JOIN_ROWS + 1))).all()
        if not rows or not _is_whole(rows[0].payload, msg):
            return text, []  # a part of a split row, or a row we cannot place: alone
        joined: list[tuple[int, str, str]] = []
        size = len(text.encode())
        for row_id, status, payload in rows[1:]:
            if not _joinable(payload):
                break
            part = str(payload.get("text", ""))
            mention = payload.get("mention_name")
            with_mention = _content(Outbound(CH, msg.chat_id, msg.chat_kind, part,
                                             mention_name=str(mention) if mention else None))
            size += 2 + len(with_mention.encode())
            if size > MARKDOWN_BYTES:
                break
            text = f"{text}\n\n{with_mention}"
            joined.append((row_id, status, part))
        return text, joined

    async def _mark_joined(self, msg: Outbound, joined: list[tuple[int, str, str]]) -> None:
        if not joined:
            return
        assert self._sm is not None
        head = await self._head_id(msg)
        async with self._sm() as s, s.begin():
            await s.execute(
                update(Outbox)
                .where(Outbox.id.in_([j[0] for j in joined]),
                       Outbox.status.in_([_PENDING, _SENDING]))
                .values(status=OutboxStatus.COALESCED.value, coalesced_into=head,
                        lease_until=None, sent_at=self._clock())
                .execution_options(synchronize_session=False))
        until = time.monotonic() + REMEMBER_JOINED_S
        held = [(text, until) for _id, status, text in joined if status == _SENDING]
        if held:
            self._joined.setdefault(msg.chat_id, []).extend(held)

    async def _head_id(self, msg: Outbound) -> int | None:
        assert self._sm is not None
        async with self._sm() as s:
            return await s.scalar(
                select(Outbox.id).where(Outbox.channel == CH, Outbox.chat_id == msg.chat_id,
                                        Outbox.status.in_([_PENDING, _SENDING]))
                .order_by(Outbox.id).limit(1))

    def _was_joined(self, chat_id: str, text: str) -> bool:
        now = time.monotonic()
        waiting = [(x, until) for x, until in self._joined.get(chat_id, []) if until > now]
        for i, (x, _until) in enumerate(waiting):
            if x == text:
                del waiting[i]
                self._joined[chat_id] = waiting
                return True
        if waiting:
            self._joined[chat_id] = waiting
        else:
            self._joined.pop(chat_id, None)
        return False


def _content(msg: Outbound) -> str:
    text = msg.text
    if msg.mention_name:
        text = f"@{msg.mention_name} {text}"
    if msg.photos:
        text = f"{text}\n{t('robot.photos', count=len(msg.photos))}"
    return text


def _joinable(payload: dict[str, Any]) -> bool:
    text = str(payload.get("text", ""))
    return bool(text) and len(text) <= MAX_TEXT and not (
        payload.get("buttons") or payload.get("photos") or payload.get("remember"))


def _is_whole(payload: dict[str, Any], msg: Outbound) -> bool:
    """Is `msg` the whole of this row, as rendered (its numbered choices after its text)?"""
    text = str(payload.get("text", ""))
    return msg.text == text or (bool(payload.get("buttons")) and msg.text.startswith(text))
