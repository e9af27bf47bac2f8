"""The coordinators' group through WeCom's group robot webhook (消息推送, formerly 群机器人):
alerts as they happen and a digest each evening. Optional: on when WECOM_GROUP_WEBHOOK_URL is
set.

- Alerts: escalations (the `escalate` events the sweeper writes in ticket_events) and messages
  the outbox gave up on (dead rows: failed repeatedly, or undeliverable). Several due at once
  go as one markdown message.
- The digest: once a day from DIGEST_HOUR local time (settings.timezone), per community: new
  today, open, overdue, resolved today. Counts only: no names, no phone numbers, no text.

How far it has posted lives in one `webhook_cursors` row: the last ticket event, the outbox
row up to which every row has settled, the day of the last digest, the posts of the last
minute and a pause after WeCom's rate-limit answer (45009). A process posts only while it
holds that row's lease, and moves the cursor right after each post, so another process or a
restart does not post it again (a crash between the POST and that commit, or a POST that timed
out but arrived, can repeat one message: at-least-once).

The platform takes 20 messages a minute from one webhook; this stays within that across
processes (the minute's posts are in the row), and backs off on 45009 and on 5xx or timeouts.
The URL carries the webhook's key: it is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.delivery.capabilities import Capabilities
from bot.messages import Outbound, PermanentSendError
from bot.notify.texts import t
from bot.sqlutil import insert_for
from config.settings import Settings
from handlers.wecom import texts_robot  # noqa: F401  (registers the texts)
from handlers.wecom.robot_sender import MaybeSent, NotSent, PostFailed, post_json
from models.county import Community, Grid
from models.enums import OPEN_STATES, OutboxStatus, TicketState
from models.robot import WebhookCursor
from models.tickets import Outbox, Ticket, TicketEvent

log = logging.getLogger(__name__)

NAME = "wecom_group"
KEY = "wecom_group"  # the cursor row
DIGEST_HOUR = 18  # local time; a constant until the county asks for a setting
PER_MINUTE = 20
RATE_LIMITED = 45009
PAUSE_S = 60.0
LEASE = timedelta(seconds=60)
POLL_S = 15.0
SOON_S = 1.0
BACKOFF_CAP_S = 300.0
MARKDOWN_BYTES = 4096
BATCH = 50
# a row still pending this long is left behind (its channel may be gone): not waited for
STUCK = timedelta(days=1)

_LEVEL = re.compile(r"(\d+)")


class _Silent:
    """serve gives every edge's sender to the outbox; nothing is ever queued for this one."""

    channel = NAME
    capabilities = Capabilities(buttons=0, quoting=False, deep_links=False)

    async def send(self, msg: Outbound) -> str | None:
        raise PermanentSendError("the group webhook takes no chat messages")


@dataclass
class _Batch:
    lines: list[str]
    event_id: int
    outbox_id: int


class GroupWebhook:
    name = NAME

    def __init__(self, url: str, timeout: float, tz: ZoneInfo) -> None:
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._tz = tz
        self._me = uuid.uuid4().hex
        self._http: aiohttp.ClientSession | None = None
        self._failures = 0
        self.sender = _Silent()

    @classmethod
    def from_settings(cls, settings: Settings) -> GroupWebhook | None:
        url = settings.wecom_group_webhook_url
        if url is None or not url.get_secret_value():
            return None
        return cls(url.get_secret_value(), settings.wechat_http_timeout_s,
                   ZoneInfo(settings.timezone))

    # -- as a handlers.serve.Edge ------------------------------------------------------

    async def prepare(self) -> None:
        """Nothing to reach first: a test post would show up in the group."""

    def follow_link(self, number: str) -> str | None:
        return None

    def mount(self, web_app: web.Application, app: App) -> None:
        app.health.channel(NAME, "push", success="post")

    async def run(self, app: App) -> None:
        while not app.stop.is_set():
            try:
                wait = await self.tick(app)
            except Exception:
                log.exception("wecom group webhook: a round failed")
                wait = POLL_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(app.stop.wait(), timeout=wait)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    # -- one round ----------------------------------------------------------------------

    async def tick(self, app: App) -> float:
        """Post what is due, at most one message; the seconds until the next round."""
        clock = app.deps.clock
        now = clock()
        async with app.deps.sm() as s, s.begin():
            cursor = await self._lease(s, now)
            if cursor is None:
                return POLL_S
            if cursor.paused_until is not None and cursor.paused_until > now:
                return (cursor.paused_until - now).total_seconds()
            recent = [x for x in cursor.recent if x > now.timestamp() - 60]
            if len(recent) >= PER_MINUTE:
                return min(recent) + 60 - now.timestamp()
            batch = await self._alerts(s, cursor, now)
            digest_day = now.astimezone(self._tz).date()
            digest = None
            if not batch.lines and cursor.digest_day != digest_day.isoformat() \
                    and now.astimezone(self._tz).hour >= DIGEST_HOUR:
                digest = await self._digest(s, now)
        if batch.lines:
            text = _fit([t("webhook.alerts", count=len(batch.lines)), *batch.lines])
        elif digest is not None:
            text = digest
        else:
            return POLL_S
        try:
            await post_json(self._session(), self._url,
                            {"msgtype": "markdown", "markdown": {"content": text}})
        except PostFailed as e:
            if e.errcode == RATE_LIMITED:
                await self._pause(app, clock())
                return PAUSE_S
            return self._failed(app, str(e))
        except (NotSent, MaybeSent) as e:
            return self._failed(app, str(e))
        self._failures = 0
        if NAME in app.health.channels:
            app.health.channels[NAME].ok()
        await self._moved(app, clock(), recent, batch,
                          digest_day.isoformat() if digest is not None else None)
        return SOON_S

    def _failed(self, app: App, why: str) -> float:
        self._failures += 1
        log.warning("wecom group webhook: post failed (%s), try %d", why, self._failures)
        if NAME in app.health.channels:
            app.health.channels[NAME].failed(why)
        return min(BACKOFF_CAP_S, 2.0 ** self._failures)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    # -- the cursor ----------------------------------------------------------------------

    async def _lease(self, s: AsyncSession, now: datetime) -> WebhookCursor | None:
        """The cursor row, leased to this process; None while another holds it."""
        first_event = await s.scalar(select(func.max(TicketEvent.id))) or 0
        first_row = await s.scalar(select(func.max(Outbox.id))) or 0
        # a new cursor starts at the present: the history is not posted
        await s.execute(insert_for(s, WebhookCursor).values(
            key=KEY, event_id=first_event, outbox_id=first_row, digest_day="", recent=[],
        ).on_conflict_do_nothing(index_elements=["key"]))
        took = await s.execute(
            update(WebhookCursor)
            .where(WebhookCursor.key == KEY,
                   or_(WebhookCursor.holder == self._me, WebhookCursor.lease_until.is_(None),
                       WebhookCursor.lease_until <= now))
            .values(holder=self._me, lease_until=now + LEASE)
            .returning(WebhookCursor.key))
        if took.first() is None:
            return None
        return await s.scalar(select(WebhookCursor).where(WebhookCursor.key == KEY)
                              .execution_options(populate_existing=True))

    async def _moved(self, app: App, now: datetime, recent: list[float], batch: _Batch,
                     digest_day: str | None) -> None:
        values: dict[str, Any] = {"recent": [*recent, now.timestamp()],
                                  "event_id": batch.event_id, "outbox_id": batch.outbox_id}
        if digest_day is not None:
            values["digest_day"] = digest_day
        async with app.deps.sm() as s, s.begin():
            await s.execute(update(WebhookCursor)
                            .where(WebhookCursor.key == KEY, WebhookCursor.holder == self._me)
                            .values(**values))

    async def _pause(self, app: App, now: datetime) -> None:
        log.warning("wecom group webhook: over WeCom's rate limit (45009); pausing %ds",
                    int(PAUSE_S))
        async with app.deps.sm() as s, s.begin():
            await s.execute(update(WebhookCursor).where(WebhookCursor.key == KEY)
                            .values(paused_until=now + timedelta(seconds=PAUSE_S)))

    # -- what is said ------------------------------------------------------------------

    async def _alerts(self, s: AsyncSession, cursor: WebhookCursor, now: datetime) -> _Batch:
        lines: list[str] = []
        event_id, outbox_id = cursor.event_id, cursor.outbox_id
        place = func.coalesce(Grid.name, Community.name, "")
        # up to the newest event now: escalations written meanwhile wait for the next round
        upto = await s.scalar(select(func.max(TicketEvent.id))) or event_id
        events = (await s.execute(
            select(TicketEvent.id, TicketEvent.note, Ticket.number, Ticket.escalation_level,
                   place)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .outerjoin(Grid, Grid.id == Ticket.grid_id)
            .outerjoin(Community, Community.id == Ticket.community_id)
            .where(TicketEvent.id > event_id, TicketEvent.id <= upto,
                   TicketEvent.kind == "escalate")
            .order_by(TicketEvent.id).limit(BATCH))).all()
        for ev_id, note, number, level, where in events:
            said = _LEVEL.search(note or "")
            lines.append(t("webhook.escalated", number=number, place=where or "—",
                           level=int(said.group(1)) if said else level))
            event_id = ev_id
        if len(events) < BATCH:  # else a full page: the rest next round
            event_id = max(event_id, upto)
        rows = (await s.execute(
            select(Outbox.id, Outbox.status, Outbox.created_at, Ticket.number)
            .outerjoin(Ticket, Ticket.id == Outbox.ticket_id)
            .where(Outbox.id > outbox_id).order_by(Outbox.id).limit(BATCH))).all()
        for row_id, status, created, number in rows:
            if status in (OutboxStatus.PENDING, OutboxStatus.SENDING) \
                    and created > now - STUCK:
                break  # not settled yet: it may still die, so the cursor waits for it
            if status == OutboxStatus.DEAD:
                lines.append(t("webhook.undelivered", number=number) if number
                             else t("webhook.undelivered_plain"))
            outbox_id = row_id
        return _Batch(lines, event_id, outbox_id)

    async def _digest(self, s: AsyncSession, now: datetime) -> str:
        local = now.astimezone(self._tz)
        midnight = datetime.combine(local.date(), time(0), self._tz)
        open_ = Ticket.state.in_([x.value for x in OPEN_STATES])
        overdue = and_(open_, _overdue(now))
        rows = (await s.execute(
            select(Community.name,
                   func.count().filter(Ticket.created_at >= midnight),
                   func.count().filter(open_),
                   func.count().filter(overdue),
                   func.count().filter(Ticket.resolved_at >= midnight))
            .select_from(Ticket).outerjoin(Community, Community.id == Ticket.community_id)
            .group_by(Community.id, Community.name).order_by(Community.name))).all()
        lines = [t("webhook.digest", day=local.date().isoformat())]
        for name, new, open_n, late, resolved in rows:
            if new or open_n or late or resolved:
                lines.append(t("webhook.digest_line", community=name or t("webhook.no_community"),
                               new=new, open=open_n, overdue=late, resolved=resolved))
        if len(lines) == 1:
            lines.append(t("webhook.digest_none"))
        return _fit(lines)


def _overdue(now: datetime) -> Any:
    """Past the deadline of the step the ticket waits on."""
    S = TicketState
    return or_(
        and_(Ticket.state.in_([S.REPORTED.value, S.RETURNED.value]), Ticket.route_due_at < now),
        and_(Ticket.state.in_([S.ASSIGNED.value, S.REOPENED.value]), Ticket.ack_due_at < now),
        and_(Ticket.state.in_([S.ACKNOWLEDGED.value, S.IN_PROGRESS.value]),
             Ticket.resolve_due_at < now),
    )


def _fit(lines: list[str]) -> str:
    """Lines up to the webhook's markdown size; what does not fit is counted."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        more = t("webhook.more", count=len(lines) - i)
        if size + len(line.encode()) + 1 + len(more.encode()) + 1 > MARKDOWN_BYTES:
            out.append(more)
            break
        out.append(line)
        size += len(line.encode()) + 1
    return "\n".join(out)

