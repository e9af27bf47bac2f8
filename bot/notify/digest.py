"""The morning digest in chat: yesterday's numbers to each community's coordinators and to the
command centre, once a day at DIGEST_AT local time.

Once across processes: one row of `webhook_cursors` (key KEY) holds the last day sent; the
process whose UPDATE moves it to today writes every recipient's outbox row in that same
transaction, so a second process (or a crash before the commit) sends nothing twice. The
outbox applies the rate limits.

Counts, per community (yesterday = the local calendar day before the digest's):
new (created), acknowledged late (acknowledged yesterday, after the deadline), overdue (open
and past the deadline of the step it is at, when the digest is made), resolved, and the
residents' ratings given in chat (满意 / 基本满意 / 不满意).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.outbox import enqueue
from bot.deps import Deps
from bot.notify.compose import staff_note
from bot.notify.texts import register, scoped, t
from bot.people import directory
from bot.people.directory import Contact
from bot.sqlutil import insert_for
from bot.tickets.queries import overdue_clause
from models.enums import Satisfaction, StaffRole
from models.enums import TicketState as S
from models.robot import WebhookCursor
from models.tickets import Ticket, TicketEvent

log = logging.getLogger(__name__)

KEY = "chat_digest"

ZH = {
    "digest.title": "【每日简报】{day}",
    "digest.line": "{community}：新报 {new}，接单超时 {late_ack}，超时未办 {overdue}，"
                   "办结 {resolved}，评价 {rated}（满意 {satisfied}、基本满意 {fairly}、"
                   "不满意 {unsatisfied}）",
    "digest.county": "全县",
    "digest.unplaced": "未定社区",
    "digest.hint": "发送“超时”查看超时工单，发送“待分派”查看待分派工单。",
}
EN = {
    "digest.title": "[Daily digest] {day}",
    "digest.line": "{community}: new {new}, acknowledged late {late_ack}, overdue {overdue}, "
                   "resolved {resolved}, rated {rated} (satisfied {satisfied}, "
                   "fairly {fairly}, not satisfied {unsatisfied})",
    "digest.county": "County",
    "digest.unplaced": "No community",
    "digest.hint": "Send 超时 for the overdue tickets, 待分派 for the unrouted queue.",
}
register(ZH, EN)

FIELDS = ("new", "late_ack", "overdue", "resolved", "satisfied", "fairly", "unsatisfied")


@dataclass(slots=True)
class Counts:
    new: int = 0
    late_ack: int = 0
    overdue: int = 0
    resolved: int = 0
    satisfied: int = 0
    fairly: int = 0
    unsatisfied: int = 0

    def add(self, other: Counts) -> None:
        for f in FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def line(self, community: str, lang: str) -> str:
        rated = self.satisfied + self.fairly + self.unsatisfied
        return t("digest.line", lang, community=community, rated=rated,
                 **{f: getattr(self, f) for f in FIELDS})


async def send_if_due(deps: Deps) -> int:
    """Queue today's digest if it is time and no process has; returns the messages queued."""
    now = deps.clock()
    local = now.astimezone(deps.sla.tz)
    if local.time() < deps.sla.digest_at:
        return 0
    today = local.date()
    # most ticks find it sent: a read, so the sweeper does not take the write lock for nothing
    async with deps.reader()() as s:
        if await s.scalar(select(WebhookCursor.digest_day)
                          .where(WebhookCursor.key == KEY)) == today.isoformat():
            return 0
    async with deps.sm() as s, s.begin():
        if not await _claim(s, today):
            return 0
        sent = await _queue(s, deps, today - timedelta(days=1), now)
    log.info("daily digest for %s: %d messages", today - timedelta(days=1), sent)
    if sent:
        deps.wake_outbox()
    return sent


async def _claim(s: AsyncSession, today: date) -> bool:
    """Move the digest row to today; False when it is there already (sent, or being sent)."""
    await s.execute(insert_for(s, WebhookCursor).values(
        key=KEY, event_id=0, outbox_id=0, digest_day="", recent=[],
    ).on_conflict_do_nothing(index_elements=["key"]))
    moved = await s.execute(update(WebhookCursor).where(
        WebhookCursor.key == KEY, WebhookCursor.digest_day < today.isoformat())
        .values(digest_day=today.isoformat()))
    return bool(cast(CursorResult[Any], moved).rowcount)


async def counts(s: AsyncSession, deps: Deps, day: date, now: datetime
                 ) -> dict[int | None, Counts]:
    """Each community's numbers for `day` (local); None: tickets with no community yet."""
    tz = deps.sla.tz
    start = datetime.combine(day, time(0), tz)
    end = start + timedelta(days=1)

    def within(col: Any) -> Any:
        return and_(col >= start, col < end)

    by: dict[int | None, Counts] = defaultdict(Counts)
    rows = await s.execute(
        select(Ticket.community_id,
               # a co-report (附议) is not a new ticket: counted as the one it follows
               func.count().filter(within(Ticket.created_at), Ticket.state != S.MERGED.value),
               func.count().filter(and_(within(Ticket.acknowledged_at),
                                        Ticket.acknowledged_at > Ticket.ack_due_at)),
               func.count().filter(within(Ticket.resolved_at)))
        .group_by(Ticket.community_id))
    for cid, new, late_ack, resolved in rows:
        by[cid].new, by[cid].late_ack, by[cid].resolved = new, late_ack, resolved
    # overdue is a state now, not yesterday's event: older tickets count too
    for cid, n in await s.execute(select(Ticket.community_id, func.count())
                                  .where(overdue_clause(now)).group_by(Ticket.community_id)):
        by[cid].overdue = n
    verdicts = await s.execute(
        select(Ticket.community_id, TicketEvent.note, func.count())
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.kind == "transition", TicketEvent.from_state == S.RESOLVED.value,
               TicketEvent.note.in_([x.value for x in Satisfaction]), within(TicketEvent.at))
        .group_by(Ticket.community_id, TicketEvent.note))
    for cid, note, n in verdicts:
        setattr(by[cid], Satisfaction(note).name.lower(), n)
    return by


async def _queue(s: AsyncSession, deps: Deps, day: date, now: datetime) -> int:
    by = await counts(s, deps, day, now)
    names = {cid: name for cid, name in deps.county.index.communities.values()}
    coords = await directory.staff(s, StaffRole.COORDINATOR)
    # one message per person, however many communities they coordinate
    mine: dict[int, tuple[Contact, list[int]]] = {}
    for post, c in coords:
        if post.community_id is not None:
            mine.setdefault(c.person_id, (c, []))[1].append(post.community_id)
    sent = 0
    for c, cids in mine.values():
        lines = [by.get(cid, Counts()).line(scoped(names.get(cid, "—"), "社区"), c.lang)
                 for cid in sorted(set(cids))]
        sent += _send(s, c, day, lines)
    county = Counts()
    for n in by.values():
        county.add(n)
    centre = {c.person_id: c for _post, c in await directory.staff(s, StaffRole.CENTRE)}
    for c in centre.values():
        lines = [county.line(t("digest.county", c.lang), c.lang)]
        lines += [by[cid].line(scoped(names[cid], "社区") if cid in names
                               else t("digest.unplaced", c.lang), c.lang)
                  for cid in sorted(by, key=lambda x: (x is None, x or 0))]
        sent += _send(s, c, day, lines)
    return sent


def _send(s: AsyncSession, c: Contact, day: date, lines: list[str]) -> int:
    text = "\n".join([t("digest.title", c.lang, day=day.isoformat()), *lines,
                      t("digest.hint", c.lang)])
    msg = staff_note(c, text, None)
    if msg is None:
        return 0
    enqueue(s, msg)
    return 1
