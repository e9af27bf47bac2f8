"""Transactional outbox: rows are written with the business change and delivered after commit.

The worker claims due rows in one short transaction (status `sending` + a lease of
OUTBOX_LEASE_SECONDS) and hands each chat's rows to a lane: a task that sends them one by
one, outside any transaction, and records each outcome before the next (a row sent: marked
in one transaction with the other lanes' rows sent meanwhile). Claims, leases and marks are
synchronous functions run whole by models.db.TxRunner (on an SQLite file: one hop to a
writer thread, the write lock held only for the statements); passes are spaced so claims
take at most about a fifth of the write lock's time. Lanes of
different chats run side by side, with at most `concurrency` requests in flight, and the
loop keeps claiming other chats while lanes are busy; a chat whose lane is running here is
not claimed again, so one slow chat never holds up another. Rows to one chat go out in id
order (also across instances: a row waits while an earlier one of its chat is in flight).

Every send has a timeout (OUTBOX_SEND_TIMEOUT_SECONDS, below the lease). A timed-out send is
retried with backoff, but it may have reached the platform: that message can arrive twice.
While rows are held, their leases are renewed every third of a lease; a row whose lease ran
out (its instance died mid-send) is claimable again, so a crash holds its chat back for at
most one lease and delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.delivery.alerts import dead_letter_alerts
from bot.delivery.capabilities import FULL, Capabilities
from bot.delivery.choices import next_number as next_choice
from bot.delivery.choices import remember as remember_choices
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.render import numbered, render
from bot.messages import (
    Action,
    Outbound,
    PermanentSendError,
    RetryLater,
    Sender,
    TemplateNotice,
    TemplateSender,
    TransientSendError,
    Undeliverable,
)
from bot.notify.texts import t
from bot.sqlutil import insert_for
from config.settings import Settings
from models.base import utcnow
from models.db import GroupCommit, TxRunner
from models.enums import ChatKind, OutboxStatus
from models.tickets import InboundLog, Outbox, SentMessage, Ticket

log = logging.getLogger(__name__)

PENDING, SENDING = OutboxStatus.PENDING.value, OutboxStatus.SENDING.value
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
MAX_MERGED_CHARS = 4000  # Telegram refuses texts over 4096
ALERT_SNIPPET = 60
ERROR_CHARS = 300
# give rows back rather than send them this close to the lease end (another instance may take them)
LEASE_MARGIN = 5.0
# passes of `run` start at least CLAIM_SPACING seconds apart, and the write lock's time
# between two is at least CLAIM_SHARE times what the last claim held it
CLAIM_SPACING = 0.05
CLAIM_SHARE = 4

_BOT_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
_SECRET_PARAM = re.compile(
    r"((?:access_token|token|secret|corpsecret|key|password)=)[^&\s\"']+", re.IGNORECASE
)


def outbox_values(msg: Outbound, now: datetime) -> dict[str, Any]:
    """Column values of one pending row, for `insert(Outbox)` with a list of these."""
    return {
        "channel": msg.channel,
        "chat_id": msg.chat_id,
        "chat_kind": ChatKind(msg.chat_kind).value,
        "payload": msg.payload(),
        "ticket_id": msg.ticket_id,
        "status": OutboxStatus.HELD.value if msg.hold_until and msg.hold_until > now else PENDING,
        "attempts": 0,
        "next_attempt_at": msg.hold_until if msg.hold_until and msg.hold_until > now else now,
        "created_at": now,
    }


def template_line(text: str, number: str) -> str:
    """The short line of a template notification: the message's first line without the ticket
    number (the template has a field of its own for it; the line is cut short, so the number
    would take the room of what happened)."""
    first = text.split("\n", 1)[0]
    rest = re.sub(rf"(?:您的)?(?:工单|[Tt]icket)?\s*{re.escape(number)}\s*", "", first)
    return rest.strip(" ，,：:。.")[:60] or first[:60]


def _addressee(msg: Outbound) -> str | None:
    """Whose numbered choices these are: in a group the addressee's, in private the chat's."""
    return msg.mention_user_id if msg.chat_kind == ChatKind.GROUP else None


def enqueue(session: AsyncSession, msg: Outbound, now: datetime | None = None) -> None:
    """Add a row in the caller's transaction; it is sent only once the caller commits."""
    # stamped with the app's clock (build_app puts it in session.info), the one the worker reads
    session.add(Outbox(**outbox_values(msg, now or session.info.get("clock", utcnow)())))


def backoff(attempt: int, rnd: float) -> float:
    """2 s, 4 s, 8 s ... capped at 5 min; ±20 % so a burst of failures doesn't retry as one."""
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt - 1, 30))
    return min(BACKOFF_CAP, base * (0.8 + 0.4 * rnd))


def describe_error(exc: BaseException) -> str:
    """Class and message, cut short, with anything token-like blanked (URLs may carry them)."""
    text = f"{type(exc).__name__}: {exc}"
    text = _SECRET_PARAM.sub(r"\1***", _BOT_TOKEN.sub("***", text))
    return text[:ERROR_CHARS]


@dataclass(slots=True)
class _Row:
    id: int
    channel: str
    chat_id: str
    chat_kind: str
    payload: dict[str, Any]
    ticket_id: int | None
    attempts: int
    merged: list[int] = field(default_factory=list)

    @property
    def chat(self) -> tuple[str, str]:
        return (self.channel, self.chat_id)


_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])
_ROW = (Outbox.id, Outbox.channel, Outbox.chat_id, Outbox.chat_kind, Outbox.payload,
        Outbox.ticket_id, Outbox.attempts)


def _snapshot(row: Any) -> _Row:
    id_, channel, chat_id, chat_kind, payload, ticket_id, attempts = row
    return _Row(id_, channel, chat_id, chat_kind, dict(payload), ticket_id, attempts)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A row sent: what `_write_sent` records for it."""

    row: _Row
    at: datetime
    ext: str | None


@dataclass(slots=True)
class _Db:
    writes: TxRunner
    reads: TxRunner
    sent: GroupCommit[_Mark, None]


def _delay(seconds: float) -> timedelta:
    return timedelta(microseconds=math.ceil(seconds * 1e6))


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Outbox.status == PENDING, Outbox.next_attempt_at <= now),
        and_(
            Outbox.status == SENDING,
            or_(Outbox.lease_until.is_(None), Outbox.lease_until <= now),
        ),
    )


def _not_behind_earlier(q: _Q, now: datetime) -> _Q:
    """`q` without rows behind an earlier row to the same chat that is waiting (backoff,
    rate limit) or in flight.

    The first such row of each chat is found once, for the whole claim: asked row by row (a
    correlated EXISTS) it read every earlier row of the chat for each due row, and a backlog
    of thousands of due rows held the write lock for tens of milliseconds.
    """
    o2 = aliased(Outbox)
    blocked = (
        select(o2.channel, o2.chat_id, func.min(o2.id).label("first"))
        .where(or_(
            and_(o2.status == PENDING, o2.next_attempt_at > now),
            and_(o2.status == SENDING, o2.lease_until > now),
        ))
        .group_by(o2.channel, o2.chat_id)
        .subquery("blocked")
    )
    on = and_(blocked.c.channel == Outbox.channel, blocked.c.chat_id == Outbox.chat_id)
    return q.outerjoin(blocked, on).where(
        or_(blocked.c.first.is_(None), blocked.c.first > Outbox.id))


def _mergeable(r: _Row) -> bool:
    p = r.payload
    return not (p.get("buttons") or p.get("photos") or p.get("remember") or p.get("alert"))


def _coalesce(rows: list[_Row]) -> list[_Row]:
    """Fold runs of consecutive plain rows into their first row; buttons/photos stay alone."""
    out: list[_Row] = []
    head: _Row | None = None
    for r in rows:
        part = str(r.payload.get("text", ""))
        if r.payload.get("mention_name"):
            # only the surviving row's mention is rendered by the sender; keep the others readable
            part = f"@{r.payload['mention_name']} {part}"
        if (
            head is not None
            and _mergeable(r)
            and len(head.payload["text"]) + 2 + len(part) <= MAX_MERGED_CHARS
        ):
            head.payload = {**head.payload, "text": f"{head.payload['text']}\n\n{part}"}
            head.merged.append(r.id)
            continue
        out.append(r)
        head = r if _mergeable(r) else None
    return out


class SendTimedOut(TransientSendError):
    """No answer within the send timeout; the message may still have reached the platform."""


def _in_chats(chats: Iterable[tuple[str, str]]) -> ColumnElement[bool]:
    return or_(*(and_(Outbox.channel == ch, Outbox.chat_id == c) for ch, c in chats))


async def _first(*aws: Awaitable[Any]) -> None:
    """Wait until one of `aws` is done; cancel the others."""
    waiters = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


class OutboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        *,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        batch_size: int = 50,
        lease_seconds: float | None = None,
        send_timeout: float | None = None,
        concurrency: int = 8,
    ) -> None:
        lease = settings.outbox_lease_seconds if lease_seconds is None else lease_seconds
        timeout = settings.outbox_send_timeout_seconds if send_timeout is None else send_timeout
        if not 0 < timeout < lease:
            raise ValueError(
                f"outbox send timeout ({timeout:g} s) must be above 0 and below the lease "
                f"({lease:g} s): a send must end before another instance may take its row"
            )
        self._sm = sessionmaker
        self._senders = dict(senders)
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        per_minute = {name: caps.per_minute for name, s in self._senders.items()
                      if (caps := getattr(s, "capabilities", None)) is not None
                      and caps.per_minute}
        self._limiter = limiter or RateLimiter.from_settings(
            settings, clock=lambda: clock().timestamp(), channel_per_minute=per_minute
        )
        # the claim plans with the limiter in the writer thread while lanes use it here
        self._limits = threading.Lock()
        self._rng = rng or random.Random()
        self._batch = batch_size
        self._lease = timedelta(seconds=lease)
        self._margin = timedelta(seconds=min(LEASE_MARGIN, lease / 4))
        self._timeout = timeout
        self._gate = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._lanes: dict[tuple[str, str], asyncio.Task[int]] = {}
        # row id -> the lease_until this process last wrote for it, for every row a lane holds
        self._held: dict[int, datetime] = {}
        # renewals and give-backs match rows by that lease_until: keep it and the DB in step
        self._lease_lock = asyncio.Lock()
        self._no_lanes = asyncio.Event()
        self._no_lanes.set()
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False
        self._runners: _Db | None = None
        self._claim_held = 0.0  # seconds the last claim held the write lock

    def _db(self) -> _Db:
        """The worker's transactions, each one hop (on an SQLite file, in a thread of its own
        with one connection): claims, leases and sent-marks write; window and template
        checks read, outside the write lock."""
        if self._runners is None:
            engine = self._sm.kw.get("bind")
            if not isinstance(engine, AsyncEngine):
                raise TypeError("the outbox's sessionmaker must be bound to an AsyncEngine")
            writes = TxRunner(engine)
            self._runners = _Db(writes, TxRunner(engine, reads_only=True),
                                GroupCommit(writes, _write_sent))
        return self._runners

    async def close(self) -> None:
        """Ends the worker's database threads (made again if the worker is used later)."""
        runners, self._runners = self._runners, None
        if runners is not None:
            await runners.writes.close()
            await runners.reads.close()

    def wake(self) -> None:
        """Deliver now instead of at the next poll (call right after committing outbox rows)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and start lanes until `stop`; then let each lane finish its current send."""
        loop = asyncio.get_running_loop()
        last = -math.inf
        try:
            while not stop.is_set():
                # a pass reads every due row under the write lock; back to back (a wake after
                # each commit) they held it most of the time under load, so passes are spaced
                spacing = max(CLAIM_SPACING, CLAIM_SHARE * self._claim_held)
                rest = last + spacing - loop.time()
                if rest > 0:
                    await _first(asyncio.sleep(rest), stop.wait())
                    if stop.is_set():
                        break
                last = loop.time()
                try:
                    started = await self._start_lanes()
                except Exception:
                    log.exception("outbox pass failed")
                    started = []
                if not started and not stop.is_set():
                    await self._idle(stop)
        finally:
            self._stopping = True  # lanes give back what they have not started sending
            try:
                await asyncio.gather(*self._lanes.values(), return_exceptions=True)
                await self._settle()
                await self.close()
            finally:
                self._stopping = False

    async def _idle(self, stop: asyncio.Event) -> None:
        if not self._wake.is_set():
            await _first(
                self._sleep(self._settings.outbox_poll_seconds), self._wake.wait(), stop.wait()
            )
        self._wake.clear()

    async def run_once(self) -> int:
        """Claim what is due now, deliver it in per-chat lanes and wait for those lanes.

        Returns how many platform messages went out. Chats whose lane is already running
        here are left to it.
        """
        lanes = await self._start_lanes()
        try:
            return sum(await asyncio.gather(*lanes))
        finally:
            await self._settle()

    async def _settle(self) -> None:
        """Once no lane is running, wait for the renewal task to notice and end."""
        if not self._lanes and self._renewer is not None:
            # asyncio.wait, not await: a cancelled caller must not cancel a renewal mid-write
            await asyncio.wait([self._renewer])

    # -- lanes --------------------------------------------------------------------

    async def _start_lanes(self) -> list[asyncio.Task[int]]:
        room = self._batch - len(self._held)
        if room <= 0:
            return []
        now = self._clock()
        rows = await self._claim(now, room)
        by_chat: dict[tuple[str, str], list[_Row]] = {}
        for r in rows:
            by_chat.setdefault(r.chat, []).append(r)
            self._held[r.id] = now + self._lease
        lanes = []
        for chat, rs in by_chat.items():
            lane = asyncio.create_task(self._lane(rs), name=f"outbox {chat[0]}:{chat[1]}")
            self._lanes[chat] = lane
            lanes.append(lane)
        if lanes:
            self._no_lanes.clear()
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.create_task(self._keep_leases(), name="outbox leases")
        return lanes

    async def _lane(self, rows: list[_Row]) -> int:
        """Send one chat's claimed rows in order; returns how many went out."""
        sent = 0
        try:
            for i, r in enumerate(rows):
                try:
                    msg = Outbound.from_row(
                        r.channel, r.chat_id, r.chat_kind, r.ticket_id, r.payload
                    )
                    msg.key = str(r.id)
                except (KeyError, TypeError, ValueError) as e:
                    await self._failed(r, PermanentSendError(f"bad payload: {e}"))
                    continue
                ext: str | None = None
                offered: list[Action] = []
                start = 1
                error: Exception | None = None
                async with self._gate:
                    back = self._hold_back(r)
                    if back is None:
                        try:
                            ext, offered, start = await self._send(msg)
                        except Exception as e:
                            error = e
                if back is not None:
                    await self._release(rows[i:], back)
                    break
                if error is not None:
                    if await self._failed(r, error):
                        await self._release(rows[i + 1 :], self._clock())
                        break
                    continue
                await self._sent(r, ext, offered, msg.mention_user_id, start)
                sent += 1
        except Exception:
            # the rows left in `sending` are claimed again once their lease runs out
            log.exception("outbox delivery to %s:%s failed", rows[0].channel, rows[0].chat_id)
        finally:
            for r in rows:
                self._held.pop(r.id, None)
            if self._lanes.get(rows[0].chat) is asyncio.current_task():
                del self._lanes[rows[0].chat]
            if not self._lanes:
                self._no_lanes.set()
            self._wake.set()  # a slot is free, and this chat may have more rows due
        return sent

    def _hold_back(self, r: _Row) -> datetime | None:
        """When to give `r` and the rest of its lane back instead of sending now (None: send)."""
        now = self._clock()
        if self._stopping or now >= self._held[r.id] - self._margin:
            return now
        with self._limits:
            wait = self._limiter.try_acquire(r.channel, r.chat_id, r.chat_kind)
        return now + _delay(wait) if wait > 0 else None

    async def _send(self, msg: Outbound) -> tuple[str | None, list[Action], int]:
        """Fit `msg` to its channel and send it: the last platform message id, and the
        numbered choices it showed with the first one's number (for `_sent` to remember)."""
        sender = self._senders[msg.channel]
        caps: Capabilities = getattr(sender, "capabilities", FULL)  # test doubles may not say
        if caps.window_hours is not None and msg.chat_kind == ChatKind.PRIVATE \
                and await self._outside_window(msg, caps.window_hours):
            return await self._timed(self._template(sender, msg, caps)), [], 1
        start = 1
        if numbered(msg, caps):
            async with self._sm() as s:
                start = await next_choice(s, msg.channel, msg.chat_id, _addressee(msg),
                                          self._clock())
        parts, offered = render(msg, caps, start=start)
        ext: str | None = None
        try:
            for i, part in enumerate(parts, 1):
                part.key = f"{msg.key}.{i}" if msg.key else None
                ext = await self._timed(sender.send(part))
        except Undeliverable as refused:
            # the platform says free text can't reach them now (its window by its clock, or
            # the quota of messages per resident message): the template still can
            if not (caps.templates and msg.chat_kind == ChatKind.PRIVATE):
                raise
            try:
                return await self._timed(self._template(sender, msg, caps)), [], 1
            except Undeliverable:
                raise refused from None  # the platform's own reason is the one to record
        return ext, offered, start

    async def _timed(self, sending: Awaitable[str | None]) -> str | None:
        limit = asyncio.timeout(self._timeout)
        try:
            async with limit:
                return await sending
        except TimeoutError as e:
            if not limit.expired():
                raise
            raise SendTimedOut(
                f"no answer within {self._timeout:g} s; it may have been delivered"
            ) from e

    async def _outside_window(self, msg: Outbound, hours: float) -> bool:
        """Has the person been silent longer than the channel lets us write freely?"""
        q = select(func.max(InboundLog.received_at)).where(
            InboundLog.channel == msg.channel, InboundLog.chat_id == msg.chat_id)
        last = await self._db().reads(lambda conn: conn.scalar(q))
        return last is None or last < self._clock() - timedelta(hours=hours)

    async def _template(self, sender: Sender, msg: Outbound, caps: Capabilities) -> str | None:
        """A template notification instead (number, state, time, a line), or undeliverable."""
        number = state = None
        if msg.ticket_id is not None:
            q = select(Ticket.number, Ticket.state).where(Ticket.id == msg.ticket_id)
            row = await self._db().reads(lambda conn: conn.execute(q).first())
            number, state = row if row else (None, None)
        if not caps.templates or number is None or not hasattr(sender, "send_template"):
            raise Undeliverable("outside the channel's messaging window, and no template")
        line = template_line(msg.text, number)
        notice = TemplateNotice(msg.channel, msg.chat_id, number, t(f"state.{state}"),
                                self._clock(), line)
        return await cast(TemplateSender, sender).send_template(notice)

    async def _keep_leases(self) -> None:
        """Renew the leases of held rows every third of a lease, while any lane runs."""
        period = self._lease.total_seconds() / 3
        while self._held:
            await _first(self._sleep(period), self._no_lanes.wait())
            if not self._held:
                break
            try:
                await self._renew()
            except Exception:
                log.exception("outbox lease renewal failed")

    async def _renew(self) -> None:
        async with self._lease_lock:
            ids = list(self._held)
            if not ids:
                return
            until = self._clock() + self._lease
            # built before the first await: a lane that ends meanwhile drops its ids from _held
            stmt = (
                update(Outbox)
                .where(self._owned(ids))
                .values(lease_until=until)
                .returning(Outbox.id)
                .execution_options(synchronize_session=False)
            )
            got = await self._db().writes(lambda conn: list(conn.scalars(stmt)))
            for row_id in got:
                if row_id in self._held:
                    self._held[row_id] = until

    def _owned(self, ids: Iterable[int]) -> ColumnElement[bool]:
        """Rows still in `sending` under the lease this process wrote (no one else took them)."""
        by_lease: dict[datetime, list[int]] = {}
        for row_id in ids:
            by_lease.setdefault(self._held[row_id], []).append(row_id)
        return and_(
            Outbox.status == SENDING,
            or_(*(and_(Outbox.id.in_(v), Outbox.lease_until == k) for k, v in by_lease.items())),
        )

    # -- claiming ---------------------------------------------------------------

    async def _claim(self, now: datetime, limit: int) -> list[_Row]:
        with self._limits:
            channels = [c for c in self._senders if self._limiter.channel_capacity(c) > 0]
        if not channels:
            return []
        q = _not_behind_earlier(
            # `|| ''` keeps SQLite (no table statistics) off ix_outbox_chat, by which it read
            # every row of the channel, sent ones too; ix_outbox_due finds the due rows
            select(*_ROW).where((Outbox.channel + "").in_(channels), _claimable(now)), now,
        ).order_by(Outbox.id).limit(limit)
        if self._lanes:
            q = q.where(~_in_chats(list(self._lanes)))
        until = now + self._lease

        # one hop: the reads, the plan and the writes hold the write lock as briefly as they can
        def claim(conn: Connection) -> list[_Row]:
            began = time.perf_counter()
            try:
                sel = q.with_for_update(skip_locked=True, of=Outbox) \
                    if conn.dialect.name == "postgresql" else q
                rows = _drop_queued_behind(conn, [_snapshot(r) for r in conn.execute(sel)])
                with self._limits:
                    take, writes = self._plan(rows, now)
                for stmt in writes:
                    conn.execute(stmt)
                return _mark_sending(conn, take, now, until)
            finally:
                self._claim_held = time.perf_counter() - began

        return await self._db().writes(claim)

    def _plan(self, rows: list[_Row], now: datetime) -> tuple[list[_Row], list[Any]]:
        """Per chat: wait if it is at its limit, coalesce a group's backlog, keep what fits now.

        Returns the rows to claim and the statements deferring / merging the others.
        """
        by_chat: dict[tuple[str, str], list[_Row]] = {}
        for r in rows:
            by_chat.setdefault(r.chat, []).append(r)
        fits: list[_Row] = []
        writes: list[Any] = []
        for (channel, chat_id), rs in by_chat.items():
            kind = rs[0].chat_kind
            cap = self._limiter.capacity(channel, chat_id, kind)
            if cap <= 0:
                until = now + _delay(self._limiter.chat_wait(channel, chat_id, kind))
                writes.append(_requeue([r.id for r in rs], until))
                continue
            if kind == ChatKind.GROUP and len(rs) > cap:
                rs = _coalesce(rs)
                writes += [w for r in rs if r.merged for w in _merge_writes(r)]
            fits += rs[:cap]
        fits.sort(key=lambda r: r.id)
        left: dict[str, int] = {}
        take: list[_Row] = []
        for r in fits:
            # an id-ordered prefix per channel, so a chat never skips one of its own rows
            n = left.setdefault(r.channel, self._limiter.channel_capacity(r.channel))
            if n > 0:
                take.append(r)
                left[r.channel] = n - 1
        return take, writes

    # -- recording ----------------------------------------------------------------

    async def _release(self, rows: Iterable[_Row], until: datetime) -> None:
        """Give rows back to `pending` without counting an attempt."""
        ids = [r.id for r in rows]
        if not ids:
            return
        async with self._lease_lock:
            stmt = _requeue(ids, until).where(self._owned(ids))
            await self._db().writes(lambda conn: conn.execute(stmt))

    async def _sent(self, r: _Row, ext: str | None, offered: list[Action] | None = None,
                    addressee: str | None = None, start: int = 1) -> None:
        mark = _Mark(r, self._clock(), None if ext is None else str(ext)[:64])
        if not offered:
            # with the other lanes' marks of the moment, in one transaction
            await self._db().sent.add(mark)
            return
        async with self._sm() as s, s.begin():
            # in a group the choices are the addressee's; in private, the chat's
            await remember_choices(s, r.channel, r.chat_id,
                                   addressee if r.chat_kind == ChatKind.GROUP else None,
                                   offered, mark.at, start)
            await (await s.connection()).run_sync(lambda conn: _write_sent(conn, [mark]))

    async def _failed(self, r: _Row, exc: Exception) -> bool:
        """Record a failed try; True if the row will be retried (so its chat must wait)."""
        now = self._clock()
        attempts = r.attempts + 1
        error = describe_error(exc)
        delay: float | None
        if isinstance(exc, RetryLater):
            # the platform's flood wait covers the whole bot, not just this chat
            with self._limits:
                self._limiter.pause(r.channel, exc.after)
            delay = exc.after
        elif isinstance(exc, PermanentSendError):
            delay = None
        else:
            delay = backoff(attempts, self._rng.random())
        dead = delay is None or attempts >= self._settings.outbox_max_attempts
        log.warning(
            "outbox row %s (%s) attempt %d failed: %s%s",
            r.id,
            r.channel,
            attempts,
            error,
            " -> dead" if dead else "",
        )
        async with self._sm() as s, s.begin():
            if not dead:
                await s.execute(
                    _by_id(r.id).values(
                        status=PENDING,
                        attempts=attempts,
                        last_error=error,
                        lease_until=None,
                        next_attempt_at=now + _delay(delay or 0.0),
                    )
                )
                return True
            await s.execute(
                _by_id(r.id).values(
                    status=OutboxStatus.DEAD.value,
                    attempts=attempts,
                    last_error=error,
                    lease_until=None,
                )
            )
            if not r.payload.get("alert"):
                for alert in await dead_letter_alerts(
                        s, row_id=r.id, channel=r.channel, chat_id=r.chat_id,
                        chat_kind=r.chat_kind, ticket_id=r.ticket_id,
                        text=str(r.payload.get("text", "")),
                        undeliverable=isinstance(exc, Undeliverable)):
                    values = outbox_values(alert, now)
                    values["payload"]["alert"] = True  # a dead alert raises no alert of its own
                    s.add(Outbox(**values))
        return False


def _drop_queued_behind(conn: Connection, rows: list[_Row]) -> list[_Row]:
    """Drop rows behind an earlier unclaimed row of their chat (one SKIP LOCKED passed over)."""
    if not rows:
        return rows
    q = (
        select(Outbox.channel, Outbox.chat_id, func.min(Outbox.id))
        .where(
            Outbox.status.in_([PENDING, SENDING]),
            Outbox.chat_id.in_(sorted({r.chat_id for r in rows})),
            Outbox.id.not_in([r.id for r in rows]),
        )
        .group_by(Outbox.channel, Outbox.chat_id)
    )
    first_other = {(ch, chat): m for ch, chat, m in conn.execute(q)}
    return [r for r in rows if first_other.get(r.chat, math.inf) > r.id]


def _mark_sending(conn: Connection, take: list[_Row], now: datetime, until: datetime
                  ) -> list[_Row]:
    if not take:
        return []
    stmt = (
        update(Outbox)
        .where(Outbox.id.in_([r.id for r in take]), _claimable(now))
        .values(status=SENDING, lease_until=until)
        .returning(Outbox.id)
        .execution_options(synchronize_session=False)
    )
    got = set(conn.scalars(stmt))
    # the guard only bites with two writers on SQLite: keep each chat's order anyway
    lost: set[tuple[str, str]] = set()
    claimed: list[_Row] = []
    give_back: list[int] = []
    for r in take:
        if r.id not in got or r.chat in lost:
            lost.add(r.chat)
            if r.id in got:
                give_back.append(r.id)
        else:
            claimed.append(r)
    if give_back:
        conn.execute(_requeue(give_back, now))
    return claimed


_SENT = (
    update(Outbox)
    .where(Outbox.id == bindparam("b_id"))
    .values(status=OutboxStatus.SENT.value, sent_at=bindparam("b_at"),
            external_message_id=bindparam("b_ext"), attempts=bindparam("b_attempts"),
            lease_until=None, last_error=None)
    .execution_options(synchronize_session=False)
)


def _write_sent(conn: Connection, marks: list[_Mark]) -> list[None]:
    """Rows sent, in one statement; a remembered one also maps its platform message id to
    its ticket."""
    conn.execute(_SENT, [{"b_id": m.row.id, "b_at": m.at, "b_ext": m.ext,
                          "b_attempts": m.row.attempts + 1} for m in marks])
    for m in marks:  # in order: a platform that reuses a message id means the newest
        r = m.row
        if r.payload.get("remember") and m.ext is not None:
            stmt = insert_for(conn, SentMessage).values(
                channel=r.channel, chat_id=r.chat_id, message_id=m.ext,
                ticket_id=r.ticket_id, created_at=m.at)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel", "chat_id", "message_id"],
                set_={"ticket_id": stmt.excluded.ticket_id, "created_at": m.at}))
    return [None] * len(marks)


def _by_id(row_id: int) -> Any:
    return update(Outbox).where(Outbox.id == row_id)


def _requeue(ids: list[int], until: datetime) -> Any:
    """Back to pending without counting an attempt (rate limit, lease running out)."""
    return (
        update(Outbox)
        .where(Outbox.id.in_(ids))
        .values(status=PENDING, lease_until=None, next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )


def _merge_writes(head: _Row) -> list[Any]:
    return [
        _by_id(head.id).values(payload={**head.payload, "coalesced": head.merged}),
        update(Outbox)
        .where(Outbox.id.in_(head.merged))
        .values(status=OutboxStatus.COALESCED.value, coalesced_into=head.id, lease_until=None)
        .execution_options(synchronize_session=False),
    ]
