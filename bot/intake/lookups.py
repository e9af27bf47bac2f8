"""The reads and small writes one intake batch makes, each once for the whole batch.

Synchronous, on the batch's Core connection (see models.db.TxRunner). The statements are
built once with expanding parameters: building and cache-keying them per batch cost as much
as running them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, select, update

from bot.intake.screen import Recent, stored_key
from bot.messages import GeoPoint, Inbound, Media
from bot.sqlutil import insert_for
from bot.tickets.sla import SlaConfig
from models.county import Grid
from models.enums import ChatKind
from models.people import ChatBinding, Identity
from models.tickets import Attachment, DayCounter, InboundLog, NewTicket, Ticket, TicketEvent

_SEEN = select(InboundLog.channel, InboundLog.external_id).where(
    InboundLog.external_id.in_(bindparam("ids", expanding=True)))
_ALBUMS = select(InboundLog.media_group_id, InboundLog.ticket_id).where(
    InboundLog.media_group_id.in_(bindparam("groups", expanding=True)),
    InboundLog.ticket_id.is_not(None))
_BINDINGS = (select(ChatBinding.chat_id, Grid.code, ChatBinding.community_id)
             .outerjoin(Grid, Grid.id == ChatBinding.grid_id)
             .where(ChatBinding.channel == bindparam("channel"),
                    ChatBinding.chat_id.in_(bindparam("chats", expanding=True))))
_PRIVATE_CHATS = select(Identity.user_id, Identity.private_chat_id).where(
    Identity.channel == bindparam("channel"),
    Identity.user_id.in_(bindparam("users", expanding=True)),
    Identity.private_chat_id.is_not(None))
_SENT_BEFORE = (
    select(InboundLog.id, InboundLog.chat_id, InboundLog.sender_id, InboundLog.media,
           InboundLog.received_at)
    .where(InboundLog.has_media.is_(True), InboundLog.channel == bindparam("channel"),
           InboundLog.received_at >= bindparam("earliest", type_=InboundLog.received_at.type),
           InboundLog.sender_id.in_(bindparam("senders", expanding=True)))
    .order_by(InboundLog.received_at, InboundLog.id))
_RECENT = (
    select(Ticket.id, Ticket.number, Ticket.reporter_user_id, Ticket.text, Ticket.created_at,
           Ticket.unrouted, Ticket.grid_id)
    .where(Ticket.channel == bindparam("channel"),
           Ticket.reporter_user_id.in_(bindparam("senders", expanding=True)),
           Ticket.created_at >= bindparam("since", type_=Ticket.created_at.type))
    .order_by(Ticket.id))
_OPEN_LATELY = (
    select(Ticket.id, Ticket.number, Ticket.chat_id, Ticket.reporter_user_id)
    .where(Ticket.channel == bindparam("channel"),
           Ticket.reporter_user_id.in_(bindparam("senders", expanding=True)),
           Ticket.created_at >= bindparam("since", type_=Ticket.created_at.type),
           Ticket.state.not_in(["closed", "rejected"]))
    .order_by(Ticket.id))
_LAST_REPEAT = (
    select(TicketEvent.ticket_id, func.max(TicketEvent.at))
    .where(TicketEvent.kind == "repeat",
           TicketEvent.ticket_id.in_(bindparam("ids", expanding=True)))
    .group_by(TicketEvent.ticket_id))
_CLAIM = (update(InboundLog).where(InboundLog.id.in_(bindparam("ids", expanding=True)))
          .values(has_media=False, ticket_id=bindparam("ticket_id")))
_ATTACH = cast(Table, Attachment.__table__).insert()


def attachments(tid: int, channel: str, media: list[Media], now: datetime) -> list[dict[str, Any]]:
    return [dict(ticket_id=tid, channel=channel, kind=m.kind, file_id=m.file_id,
                 media_sha=m.sha256, role="report",
                 created_at=now) for m in media]


def drop_seen(conn: Connection, inbounds: list[Inbound]) -> list[int]:
    """Indexes of the messages never seen before (platforms redeliver; so do batches)."""
    keys = {(ib.channel, ib.external_id) for ib in inbounds}
    seen: set[tuple[str, str]] = {
        (ch, ext) for ch, ext in conn.execute(_SEEN, {"ids": [k[1] for k in keys]})}
    fresh: list[int] = []
    for i, ib in enumerate(inbounds):
        key = (ib.channel, ib.external_id)
        if key not in seen:
            seen.add(key)
            fresh.append(i)
    return fresh


def album_tickets(conn: Connection, inbounds: list[Inbound]) -> dict[str, int]:
    groups = {ib.media_group_id for ib in inbounds if ib.media_group_id}
    if not groups:
        return {}
    rows = conn.execute(_ALBUMS, {"groups": list(groups)})
    return {g: tid for g, tid in rows.all() if g and tid}


def bindings(
    conn: Connection, inbounds: Any
) -> dict[str, tuple[str | None, int | None]]:
    chats = {ib.chat_id for ib in inbounds if ib.chat_kind == ChatKind.GROUP}
    channel = next(iter(inbounds)).channel
    if not chats:
        return {}
    rows = conn.execute(_BINDINGS, {"channel": channel, "chats": list(chats)})
    return {chat: (code, comm) for chat, code, comm in rows.all()}


def private_chats(conn: Connection, inbounds: Any) -> dict[str, str]:
    first = next(iter(inbounds))
    users = {ib.sender_id for ib in inbounds}
    rows = conn.execute(_PRIVATE_CHATS, {"channel": first.channel, "users": list(users)})
    return {u: c for u, c in rows.all() if c}


def remember_private_chats(conn: Connection, reports: dict[int, Inbound],
                           known: dict[str, str], now: datetime) -> None:
    """A private report tells us the resident's private chat: updates go there from now on.

    Done here, once per batch, so that a private message needs no write transaction of its
    own before intake (Core._may_follow_up).
    """
    rows = {ib.sender_id: dict(channel=ib.channel, user_id=ib.sender_id,
                               display_name=ib.sender_name[:128], private_chat_id=ib.chat_id,
                               created_at=now)
            for ib in reports.values()
            if ib.chat_kind == ChatKind.PRIVATE and known.get(ib.sender_id) != ib.chat_id}
    if not rows:
        return
    stmt = insert_for(conn, Identity)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["channel", "user_id"],
        set_={"private_chat_id": stmt.excluded.private_chat_id,
              "display_name": stmt.excluded.display_name}), list(rows.values()))


def allocate_numbers(
    conn: Connection, prefix: str, now: datetime, n: int, sla: SlaConfig
) -> list[str]:
    day = now.astimezone(sla.tz).strftime("%Y%m%d")
    stmt = insert_for(conn, DayCounter).values(day=day, last=n)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day"], set_={"last": DayCounter.last + n}
    ).returning(DayCounter.last)
    last = conn.execute(stmt).scalar_one()
    return [f"{prefix}-{day}-{seq:04d}" for seq in range(last - n + 1, last + 1)]


@dataclass(slots=True)
class Earlier:
    """What a resident sent in the minutes before their report: photos, a shared location."""

    row_ids: list[int] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    location: GeoPoint | None = None


def log_media(ib: Inbound) -> list[dict[str, Any]]:
    """The inbound log keeps what a later report may claim (locations as a kind of media)."""
    out: list[dict[str, Any]] = [{"kind": m.kind, "file_id": m.file_id, "sha": m.sha256}
                                 for m in ib.media]
    if ib.location is not None:
        loc = ib.location
        out.append({"kind": "location", "lat": loc.lat, "lon": loc.lon, "datum": loc.datum})
    return out


def sent_before(
    conn: Connection, reports: dict[int, Inbound], window: timedelta
) -> dict[int, Earlier]:
    """Per report: media and location the same sender posted in that chat shortly before.

    Both ends use the platform's message times, so a backlog handled late still pairs up.
    """
    by_sender = {(ib.chat_id, ib.sender_id): (i, ib.received_at) for i, ib in reports.items()}
    channel = next(iter(reports.values())).channel
    earliest = min(ib.received_at for ib in reports.values()) - window
    rows = conn.execute(_SENT_BEFORE, {"channel": channel, "earliest": earliest,
                                       "senders": list({k[1] for k in by_sender})})
    found: dict[int, Earlier] = {}
    for row_id, chat_id, sender_id, media, at in rows:
        hit = by_sender.get((chat_id, sender_id))
        if hit is None or not (hit[1] - window <= at <= hit[1]):
            continue
        e = found.setdefault(hit[0], Earlier())
        e.row_ids.append(row_id)
        for m in media:
            if m["kind"] == "location":
                point = GeoPoint(float(m["lat"]), float(m["lon"]), str(m["datum"]))
                if point.usable():  # one stored before validation must not sink the report
                    e.location = point  # the latest one wins
            else:
                e.media.append(Media(m["kind"], m["file_id"], m.get("sha")))
    return found


def recent_tickets(conn: Connection, reports: dict[int, Inbound], since: datetime
                   ) -> list[Recent]:
    """Tickets the senders of these reports opened since `since` (for intake_screen)."""
    channel = next(iter(reports.values())).channel
    rows = conn.execute(_RECENT, {"channel": channel, "since": since,
                                  "senders": list({ib.sender_id for ib in reports.values()})})
    # held = in the unrouted queue without a grid: a held flood does not count towards the
    # limit again, or one burst would hold that person's next real report too
    return [Recent(tid, number, user, stored_key(text), at, unrouted and grid is None)
            for tid, number, user, text, at, unrouted, grid in rows]


def open_lately(conn: Connection, items: dict[int, Inbound], since: datetime
                ) -> dict[int, tuple[int, str]]:
    """Per message: the newest open ticket its sender reported in that chat since `since`."""
    channel = next(iter(items.values())).channel
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for tid, number, chat, user in conn.execute(_OPEN_LATELY, {
            "channel": channel, "since": since,
            "senders": list({ib.sender_id for ib in items.values()})}):
        newest[(chat, user)] = (tid, number)
    return {i: newest[(ib.chat_id, ib.sender_id)] for i, ib in items.items()
            if (ib.chat_id, ib.sender_id) in newest}


def last_repeats(conn: Connection, ticket_ids: list[int]) -> dict[int, datetime]:
    """When each ticket last got a "+1" (the resident is answered once a minute at most)."""
    if not ticket_ids:
        return {}
    return {tid: at for tid, at in conn.execute(_LAST_REPEAT, {"ids": ticket_ids})}


def claim(
    conn: Connection, earlier: dict[int, Earlier], tickets: dict[int, NewTicket], channel: str,
    now: datetime,
) -> None:
    """Attach what was sent before to the tickets, and take it off the claimable list."""
    attach: list[dict[str, Any]] = []
    for i, e in earlier.items():
        ticket = tickets[i]
        conn.execute(_CLAIM, {"ids": e.row_ids, "ticket_id": ticket.id})
        attach += attachments(ticket.id, channel, e.media, now)
    if attach:
        conn.execute(_ATTACH, attach)
