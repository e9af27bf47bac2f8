"""The reads and small writes one intake batch makes, each once for the whole batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import GeoPoint, Inbound, Media
from bot.sla import SlaConfig
from bot.sqlutil import insert_for
from models.county import Grid
from models.enums import ChatKind
from models.people import ChatBinding, Identity
from models.tickets import Attachment, DayCounter, InboundLog, Ticket


def attachments(tid: int, channel: str, media: list[Media], now: datetime) -> list[dict[str, Any]]:
    return [dict(ticket_id=tid, channel=channel, kind=m.kind, file_id=m.file_id, role="report",
                 created_at=now) for m in media]


async def drop_seen(s: AsyncSession, inbounds: list[Inbound]) -> list[int]:
    """Indexes of the messages never seen before (platforms redeliver; so do batches)."""
    keys = {(ib.channel, ib.external_id) for ib in inbounds}
    seen = set(
        (await s.execute(
            select(InboundLog.channel, InboundLog.external_id).where(
                InboundLog.external_id.in_([k[1] for k in keys]))
        )).all()
    )
    fresh: list[int] = []
    for i, ib in enumerate(inbounds):
        key = (ib.channel, ib.external_id)
        if key not in seen:
            seen.add(key)
            fresh.append(i)
    return fresh


async def album_tickets(s: AsyncSession, inbounds: list[Inbound]) -> dict[str, int]:
    groups = {ib.media_group_id for ib in inbounds if ib.media_group_id}
    if not groups:
        return {}
    rows = await s.execute(
        select(InboundLog.media_group_id, InboundLog.ticket_id).where(
            InboundLog.media_group_id.in_(groups), InboundLog.ticket_id.is_not(None))
    )
    return {g: tid for g, tid in rows.all() if g and tid}


async def bindings(
    s: AsyncSession, inbounds: Any
) -> dict[str, tuple[str | None, int | None]]:
    chats = {ib.chat_id for ib in inbounds if ib.chat_kind == ChatKind.GROUP}
    channel = next(iter(inbounds)).channel
    if not chats:
        return {}
    rows = await s.execute(
        select(ChatBinding.chat_id, Grid.code, ChatBinding.community_id)
        .outerjoin(Grid, Grid.id == ChatBinding.grid_id)
        .where(ChatBinding.channel == channel, ChatBinding.chat_id.in_(chats))
    )
    return {chat: (code, comm) for chat, code, comm in rows.all()}


async def private_chats(s: AsyncSession, inbounds: Any) -> dict[str, str]:
    first = next(iter(inbounds))
    users = {ib.sender_id for ib in inbounds}
    rows = await s.execute(
        select(Identity.user_id, Identity.private_chat_id).where(
            Identity.channel == first.channel, Identity.user_id.in_(users),
            Identity.private_chat_id.is_not(None))
    )
    return {u: c for u, c in rows.all() if c}


async def allocate_numbers(
    s: AsyncSession, prefix: str, now: datetime, n: int, sla: SlaConfig
) -> list[str]:
    day = now.astimezone(sla.tz).strftime("%Y%m%d")
    stmt = insert_for(s, DayCounter).values(day=day, last=n)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day"], set_={"last": DayCounter.last + n}
    ).returning(DayCounter.last)
    last = (await s.execute(stmt)).scalar_one()
    return [f"{prefix}-{day}-{seq:04d}" for seq in range(last - n + 1, last + 1)]


@dataclass(slots=True)
class Earlier:
    """What a resident sent in the minutes before their report: photos, a shared location."""

    row_ids: list[int] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    location: GeoPoint | None = None


def log_media(ib: Inbound) -> list[dict[str, Any]]:
    """The inbound log keeps what a later report may claim (locations as a kind of media)."""
    out: list[dict[str, Any]] = [{"kind": m.kind, "file_id": m.file_id} for m in ib.media]
    if ib.location is not None:
        loc = ib.location
        out.append({"kind": "location", "lat": loc.lat, "lon": loc.lon, "datum": loc.datum})
    return out


async def sent_before(
    s: AsyncSession, reports: dict[int, Inbound], window: timedelta
) -> dict[int, Earlier]:
    """Per report: media and location the same sender posted in that chat shortly before.

    Both ends use the platform's message times, so a backlog handled late still pairs up.
    """
    by_sender = {(ib.chat_id, ib.sender_id): (i, ib.received_at) for i, ib in reports.items()}
    channel = next(iter(reports.values())).channel
    earliest = min(ib.received_at for ib in reports.values()) - window
    rows = await s.execute(
        select(InboundLog.id, InboundLog.chat_id, InboundLog.sender_id, InboundLog.media,
               InboundLog.received_at)
        .where(InboundLog.has_media.is_(True), InboundLog.channel == channel,
               InboundLog.received_at >= earliest,
               InboundLog.sender_id.in_({k[1] for k in by_sender}))
        .order_by(InboundLog.received_at, InboundLog.id))
    found: dict[int, Earlier] = {}
    for row_id, chat_id, sender_id, media, at in rows:
        hit = by_sender.get((chat_id, sender_id))
        if hit is None or not (hit[1] - window <= at <= hit[1]):
            continue
        e = found.setdefault(hit[0], Earlier())
        e.row_ids.append(row_id)
        for m in media:
            if m["kind"] == "location":
                e.location = GeoPoint(m["lat"], m["lon"], m["datum"])  # the latest one wins
            else:
                e.media.append(Media(m["kind"], m["file_id"]))
    return found


async def claim(
    s: AsyncSession, earlier: dict[int, Earlier], tickets: dict[int, Ticket], channel: str,
    now: datetime,
) -> None:
    """Attach what was sent before to the tickets, and take it off the claimable list."""
    attach: list[dict[str, Any]] = []
    for i, e in earlier.items():
        ticket = tickets[i]
        await s.execute(update(InboundLog).where(InboundLog.id.in_(e.row_ids))
                        .values(has_media=False, ticket_id=ticket.id))
        attach += attachments(ticket.id, channel, e.media, now)
    if attach:
        await s.execute(Attachment.__table__.insert(), attach)
