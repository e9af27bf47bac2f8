"""Transactional outbox: rows are written with the business change and delivered after commit.

A pass claims due rows in one short transaction (status `sending` + a lease), sends them
outside any transaction, and records each outcome in its own transaction. A row whose
lease ran out (its instance died mid-send) is claimable again, so delivery is
at-least-once. Rows to one chat go out in id order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.messages import Outbound, PermanentSendError, RetryLater, Sender
from bot.outbox_alerts import dead_letter_alerts
from bot.ratelimit import RateLimiter
from config.settings import Settings
from models.base import utcnow
from models.enums import ChatKind, OutboxStatus
from models.tickets import Outbox, SentMessage

log = logging.getLogger(__name__)

PENDING, SENDING = OutboxStatus.PENDING.value, OutboxStatus.SENDING.value
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
MAX_MERGED_CHARS = 4000  # Telegram refuses texts over 4096
ALERT_SNIPPET = 60
ERROR_CHARS = 300
# give rows back rather than send them this close to the lease end (another instance may take them)
LEASE_MARGIN = 5.0

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
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


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


def _snapshot(o: Outbox) -> _Row:
    return _Row(o.id, o.channel, o.chat_id, o.chat_kind, dict(o.payload), o.ticket_id, o.attempts)


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


def _behind_earlier(now: datetime) -> ColumnElement[bool]:
    """An earlier row to the same chat is waiting (backoff, rate limit) or in flight."""
    o2 = aliased(Outbox)
    return exists().where(
        o2.channel == Outbox.channel,
        o2.chat_id == Outbox.chat_id,
        o2.id < Outbox.id,
        or_(
            and_(o2.status == PENDING, o2.next_attempt_at > now),
            and_(o2.status == SENDING, o2.lease_until > now),
        ),
    )


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
        lease_seconds: float = 60.0,
        concurrency: int = 8,
    ) -> None:
        self._sm = sessionmaker
        self._senders = dict(senders)
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._limiter = limiter or RateLimiter.from_settings(
            settings, clock=lambda: clock().timestamp()
        )
        self._rng = rng or random.Random()
        self._batch = batch_size
        self._lease = timedelta(seconds=lease_seconds)
        self._margin = timedelta(seconds=min(LEASE_MARGIN, lease_seconds / 4))
        self._concurrency = concurrency
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver now instead of at the next poll (call right after committing outbox rows)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                sent = 0
            if sent == 0 and not stop.is_set():
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        if not self._wake.is_set():
            waiters = [
                asyncio.ensure_future(self._sleep(self._settings.outbox_poll_seconds)),
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        self._wake.clear()

    async def run_once(self) -> int:
        """Send what is due now; returns how many platform messages went out."""
        now = self._clock()
        rows = await self._claim(now)
        by_chat: dict[tuple[str, str], list[_Row]] = {}
        for r in rows:
            by_chat.setdefault(r.chat, []).append(r)
        gate = asyncio.Semaphore(self._concurrency)
        lease_end = now + self._lease
        results = await asyncio.gather(
            *(self._deliver_chat(rs, lease_end, gate) for rs in by_chat.values()),
            return_exceptions=True,
        )
        sent = 0
        for res in results:
            if isinstance(res, BaseException):
                # one chat's failure (say, the DB) must not strand the others; its rows'
                # leases run out and they are claimed again
                log.error("outbox delivery failed", exc_info=res)
            else:
                sent += res
        return sent

    # -- claiming ---------------------------------------------------------------

    async def _claim(self, now: datetime) -> list[_Row]:
        channels = [c for c in self._senders if self._limiter.channel_capacity(c) > 0]
        if not channels:
            return []
        async with self._sm() as s, s.begin():
            q = (
                select(Outbox)
                .where(Outbox.channel.in_(channels), _claimable(now), ~_behind_earlier(now))
                .order_by(Outbox.id)
                .limit(self._batch)
            )
            if s.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True, of=Outbox)
            rows = await self._drop_queued_behind(s, [_snapshot(o) for o in await s.scalars(q)])
            take, writes = self._plan(rows, now)
            for stmt in writes:
                await s.execute(stmt)
            return await self._mark_sending(s, take, now)

    async def _drop_queued_behind(self, s: AsyncSession, rows: list[_Row]) -> list[_Row]:
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
        first_other = {(ch, chat): m for ch, chat, m in await s.execute(q)}
        return [r for r in rows if first_other.get(r.chat, math.inf) > r.id]

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

    async def _mark_sending(self, s: AsyncSession, take: list[_Row], now: datetime) -> list[_Row]:
        if not take:
            return []
        stmt = (
            update(Outbox)
            .where(Outbox.id.in_([r.id for r in take]), _claimable(now))
            .values(status=SENDING, lease_until=now + self._lease)
            .returning(Outbox.id)
            .execution_options(synchronize_session=False)
        )
        got = set(await s.scalars(stmt))
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
            await s.execute(_requeue(give_back, now))
        return claimed

    # -- sending ----------------------------------------------------------------

    async def _deliver_chat(
        self, rows: list[_Row], lease_end: datetime, gate: asyncio.Semaphore
    ) -> int:
        sent = 0
        async with gate:
            for i, r in enumerate(rows):
                now = self._clock()
                if now >= lease_end - self._margin:
                    await self._release(rows[i:], now)
                    break
                try:
                    msg = Outbound.from_row(
                        r.channel, r.chat_id, r.chat_kind, r.ticket_id, r.payload
                    )
                except (KeyError, TypeError, ValueError) as e:
                    await self._failed(r, PermanentSendError(f"bad payload: {e}"))
                    continue
                wait = self._limiter.try_acquire(r.channel, r.chat_id, r.chat_kind)
                if wait > 0:
                    await self._release(rows[i:], now + _delay(wait))
                    break
                try:
                    ext = await self._senders[r.channel].send(msg)
                except Exception as e:
                    if await self._failed(r, e):
                        await self._release(rows[i + 1 :], self._clock())
                        break
                    continue
                await self._sent(r, ext)
                sent += 1
        return sent

    async def _release(self, rows: Iterable[_Row], until: datetime) -> None:
        ids = [r.id for r in rows]
        if ids:
            async with self._sm() as s, s.begin():
                await s.execute(_requeue(ids, until).where(Outbox.status == SENDING))

    async def _sent(self, r: _Row, ext: str | None) -> None:
        now = self._clock()
        ext = None if ext is None else str(ext)[:64]
        async with self._sm() as s, s.begin():
            await s.execute(
                _by_id(r.id).values(
                    status=OutboxStatus.SENT.value,
                    sent_at=now,
                    external_message_id=ext,
                    attempts=r.attempts + 1,
                    lease_until=None,
                    last_error=None,
                )
            )
            if r.payload.get("remember") and ext is not None:
                seen = await s.scalar(
                    select(SentMessage.id).where(
                        SentMessage.channel == r.channel,
                        SentMessage.chat_id == r.chat_id,
                        SentMessage.message_id == ext,
                    )
                )
                if seen is None:
                    s.add(
                        SentMessage(
                            channel=r.channel,
                            chat_id=r.chat_id,
                            message_id=ext,
                            ticket_id=r.ticket_id,
                            created_at=now,
                        )
                    )

    async def _failed(self, r: _Row, exc: Exception) -> bool:
        """Record a failed try; True if the row will be retried (so its chat must wait)."""
        now = self._clock()
        attempts = r.attempts + 1
        error = describe_error(exc)
        delay: float | None
        if isinstance(exc, RetryLater):
            # the platform's flood wait covers the whole bot, not just this chat
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
                        text=str(r.payload.get("text", ""))):
                    values = outbox_values(alert, now)
                    values["payload"]["alert"] = True  # a dead alert raises no alert of its own
                    s.add(Outbox(**values))
        return False


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
