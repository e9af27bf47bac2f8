"""Telling people about a ticket: the resident where they reported, staff privately."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.media import photo_ref
from bot.delivery.outbox import enqueue
from bot.deps import Ctx, Deps, answered
from bot.messages import Button
from bot.notify import compose
from bot.notify.texts import t
from bot.people import directory
from bot.tickets.lifecycle import MIRRORED
from models.enums import ACTIVE, Channel, StaffRole
from models.enums import TicketState as S
from models.people import Identity
from models.tickets import Attachment, Ticket

# tickets whose resident we cannot write to: 居民上报 (they hear from WeCom) and 代报 (filed
# for them face to face; the call-back reaches them by phone)
NO_CHAT_BACK = MIRRORED | {Channel.OFFLINE.value}
# what co-reporters (附议) hear of the ticket they follow: its work, not its routing questions
FOLLOWED = frozenset({"resident.acked", "resident.progress", "resident.resolved",
                      "resident.returned_wait", "resident.rejected", "resident.transferred",
                      "resident.auto_closed", "resident.merged"})


async def resident_chat(s: AsyncSession, ticket: Ticket) -> tuple[str | None, str]:
    """The reporter's private chat (None until they started the bot) and their language."""
    row = (await s.execute(select(Identity.private_chat_id, Identity.language).where(
        Identity.channel == ticket.channel, Identity.user_id == ticket.reporter_user_id))).first()
    return (row[0], row[1] or "") if row else (None, "")


async def tell_resident(s: AsyncSession, ticket: Ticket, key: str, *,
                        buttons: Callable[[str], list[list[Button]]] | None = None,
                        photos: list[str] | None = None, remember: bool = False,
                        **kw: object) -> None:
    """Text `key` in the resident's language (buttons are built for it too); nothing where
    there is no chat back to them (NO_CHAT_BACK)."""
    told = [ticket] if ticket.channel not in NO_CHAT_BACK else []
    if key in FOLLOWED:
        told += await co_reporters(s, ticket)
    chats: set[tuple[str, str]] = set()
    for whom in told:
        chat, lang = await resident_chat(s, whom)
        text = t(key, lang, number=ticket.number, **kw)
        msg = compose.to_resident(whom, chat, text, buttons(lang) if buttons else None,
                                  remember)
        if (msg.channel, msg.chat_id) in chats:
            continue  # neighbours in one group read one message
        chats.add((msg.channel, msg.chat_id))
        msg.ticket_id = ticket.id  # a reply to it is about the ticket they follow
        msg.photos = list(photos or [])
        answered(s, msg.channel, msg.chat_id)  # when the resident acted, this is their answer
        enqueue(s, msg)


async def co_reporters(s: AsyncSession, ticket: Ticket) -> list[Ticket]:
    """The co-reports following `ticket` whose reporters can be written to, one per person
    (the first reporter is told as the reporter)."""
    rows = (await s.scalars(select(Ticket).where(
        Ticket.merged_into_id == ticket.id, Ticket.state == S.MERGED.value,
        Ticket.channel.not_in(list(NO_CHAT_BACK))).order_by(Ticket.id))).all()
    seen = {(ticket.channel, ticket.reporter_user_id)}
    out: list[Ticket] = []
    for tk in rows:
        if (tk.channel, tk.reporter_user_id) not in seen:
            seen.add((tk.channel, tk.reporter_user_id))
            out.append(tk)
    return out


async def tell_staff(s: AsyncSession, deps: Deps, role: StaffRole, ticket: Ticket, key: str,
                     buttons: list[list[Button]] | None = None, **kw: object) -> int:
    if role in (StaffRole.WORKER, StaffRole.LEADER):
        targets = await directory.staff(s, role, grid_ids=[ticket.grid_id or 0],
                                        prefer_channel=ticket.channel)
    elif role == StaffRole.COORDINATOR:
        # no community known: not every coordinator in the county (none of them may act on
        # it); the caller falls back to the command centre
        targets = await directory.staff(s, role, community_id=ticket.community_id,
                                        prefer_channel=ticket.channel) \
            if ticket.community_id is not None else []
    else:
        targets = await directory.staff(s, role, prefer_channel=ticket.channel)
    sent = 0
    for _a, c in targets:
        msg = compose.staff_note(c, t(key, c.lang, number=ticket.number, **kw), ticket.id, buttons)
        if msg:
            enqueue(s, compose.quietly(msg, ticket.priority, deps.clock(), deps.sla))
            sent += 1
    return sent


# who hears when the level below has nobody reachable: grid leader, community, command centre
LADDER = (StaffRole.LEADER, StaffRole.COORDINATOR, StaffRole.CENTRE)


async def tell_up(s: AsyncSession, deps: Deps, ticket: Ticket, key: str, start: StaffRole,
                  buttons: list[list[Button]] | None = None, **kw: object) -> StaffRole | None:
    """Tell `start`'s people; a rung with nobody on it passes the message up the ladder.

    Returns the rung that was told (None: nobody could be), so the resident hears who.
    """
    for role in LADDER[LADDER.index(start):]:
        if await tell_staff(s, deps, role, ticket, key, buttons, **kw):
            return role
    return None


async def send_card(s: AsyncSession, deps: Deps, ticket: Ticket, title: str = "card.title", *,
                    quiet: bool = False) -> bool:
    """The ticket's card to its worker; `quiet`: a new assignment, which waits out the quiet
    hours when the ticket is not urgent (a card a worker asked for comes at once)."""
    if ticket.assignee_id is None:
        return False
    c = await directory.contact(s, ticket.assignee_id, ticket.channel)
    idx = deps.county.index
    code = idx.grids_by_id[ticket.grid_id].code if ticket.grid_id in idx.grids_by_id else None
    photos = [photo_ref(ch, fid, sha) for ch, fid, sha in await s.execute(
        select(Attachment.channel, Attachment.file_id, Attachment.media_sha).where(
            Attachment.ticket_id == ticket.id, Attachment.kind == "photo",
            Attachment.role == "report").order_by(Attachment.id))]
    card = compose.worker_card(ticket, c, idx.label(code), deps.sla.tz, title, photos[:1]) \
        if c else None
    if card is None:
        return False
    enqueue(s, compose.quietly(card, ticket.priority, deps.clock(), deps.sla) if quiet else card)
    return True


async def cards_waiting_for(s: AsyncSession, deps: Deps, ctx: Ctx, limit: int = 10) -> int:
    """A worker who joins after tickets were routed to them gets those cards now."""
    person_id = await s.scalar(select(Identity.person_id).where(
        Identity.channel == ctx.channel, Identity.user_id == ctx.user_id))
    if person_id is None:
        return 0
    waiting = (await s.scalars(select(Ticket).where(
        Ticket.assignee_id == person_id, Ticket.state.in_([x.value for x in ACTIVE]))
        .order_by(Ticket.id).limit(limit))).all()
    return sum([await send_card(s, deps, tk) for tk in waiting])
