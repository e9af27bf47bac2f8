"""代报: a worker or station staff member files a report for a resident met face to face.

The ticket is an ordinary one on channel `offline`: numbered, routed, timed and audited as
intake does it (lookups.allocate_numbers, lifecycle.opening), its card goes to the grid's
worker. The resident has no chat here (tell.NO_CHAT_BACK): a resolved ticket waits for the
sweeper's auto-close, and the command centre's call-back (回访) is how they are asked. Their
name is the ticket's reporter; their phone goes to resident_contacts only, read by the
call-backs and nothing a worker or a group sees. The filer's account is not the reporter:
reporter_user_id is `offline:<filer's person id>:<number>`, so nobody rates, answers "where?"
or reads the ticket as its reporter in chat.

Where it goes: a place named in the problem wins; else the filer's own grid; a filer with no
grid (a coordinator, the centre) and no place puts it in the community's unrouted queue, as a
report nobody could place. A filer who is a worker of that grid takes it themselves (the card
comes to them to 接单), since they met the resident.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.index import CountyIndex
from bot.deps import Ctx, Deps
from bot.intake.category import categorize
from bot.intake.classify import place_label
from bot.intake.lookups import allocate_numbers, attachments
from bot.messages import Inbound
from bot.notify.tell import send_card, tell_up
from bot.notify.texts import t
from bot.people import directory
from bot.tickets.assign import to_unrouted
from bot.tickets.by_words import NotMeant
from bot.tickets.lifecycle import Actor, Refused, opening, record
from bot.tickets.offline_words import Filing
from models.enums import Channel, ChatKind, Role, RouteStatus, StaffRole
from models.enums import TicketState as S
from models.people import StaffAssignment
from models.tickets import Attachment, NewTicket, PendingInput, Ticket, TicketEvent
from models.wecom import ResidentContact

SOURCE = Channel.OFFLINE.value
# photos sent this soon after a 代报 belong to it (intake's MEDIA_WINDOW_SECONDS default)
MEDIA_WINDOW = timedelta(minutes=2)
# the filer's standing roles, in the order their post decides where a report goes
_POST_ORDER = (StaffRole.WORKER, StaffRole.LEADER, StaffRole.COORDINATOR, StaffRole.CENTRE)


async def carry_out(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound, said: Filing) -> str:
    """File it; the answer for the filer. Raises Refused (nothing filed)."""
    posts = sorted(await directory.standing_roles(s, ctx.channel, ctx.user_id),
                   key=lambda p: (_POST_ORDER.index(StaffRole(p.role)), p.id))
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, None)
    if not posts:
        raise Refused(t("offline.staff_only", actor.lang))
    if ctx.chat_kind != ChatKind.PRIVATE:  # a phone is never echoed where others read
        raise Refused(t("offline.private_only", actor.lang))
    if said.phones > 1:
        raise Refused(t("offline.one_phone", actor.lang))
    if not said.content:
        raise Refused(t("offline.usage", actor.lang))
    filer = Actor(roles=frozenset({Role(posts[0].role)}), person_id=actor.person_id,
                  name=actor.name, user_id=ctx.user_id, channel=ctx.channel, lang=actor.lang)
    return await _file(s, deps, ib, said, posts, filer)


async def _file(s: AsyncSession, deps: Deps, ib: Inbound, said: Filing,
                posts: list[StaffAssignment], filer: Actor) -> str:
    idx, now, lang = deps.county.index, deps.clock(), filer.lang
    own_grid = next((p.grid_id for p in posts if p.grid_id in idx.grids_by_id), None)
    res = idx.router.route(said.content, location=None, chat_grid=idx.grids_by_id[
        own_grid].code if own_grid is not None else None)
    grid = idx.grids.get(res.grid or "") if res.status == RouteStatus.ROUTED else None
    number = (await s.run_sync(lambda ss: allocate_numbers(
        ss.connection(), deps.prefix, now, 1, deps.sla)))[0]
    new = NewTicket(
        number=number, category=categorize(said.content).value, text=said.content,
        place_text=place_label(said.content, res.matched), route_status=res.status.value,
        candidates=list(res.candidates), grid_id=grid.id if grid else None,
        community_id=grid.community_id if grid else _community(idx, res.candidates, posts),
        channel=SOURCE, chat_id="", chat_kind=ChatKind.PRIVATE.value,
        reporter_user_id=f"{SOURCE}:{filer.person_id}:{number}"[:64],
        reporter_name=(said.name or t("offline.someone", ""))[:128])
    worker = await _worker(s, grid.id, filer) if grid else None
    events = opening(new, routed=grid is not None, now=now, cfg=deps.sla,
                     assignee_id=worker.person_id if worker else None)
    ticket = Ticket(**new.values())
    s.add(ticket)
    await s.flush()
    s.add_all([TicketEvent(**ev, ticket_id=ticket.id) for ev in events])
    record(s, ticket, filer, "remark", now=now,
           note=t("offline.remark", "", name=filer.name)[:500])
    if said.name or said.phone:
        s.add(ResidentContact(ticket_id=ticket.id, name=said.name[:128], mobile=said.phone,
                              source=SOURCE, created_at=now))
    if ib.media:
        await _attach(s, ticket.id, ib, now)
    answer = await _send_on(s, deps, ticket, worker, filer)
    return answer if said.phone else f"{answer}\n{t('offline.no_phone', lang)}"


async def _send_on(s: AsyncSession, deps: Deps, ticket: Ticket,
                   worker: directory.Contact | None, filer: Actor) -> str:
    """The card to the grid's worker, or the ladder when there is none; what the filer hears."""
    lang, number = filer.lang, ticket.number
    if ticket.grid_id is None:
        told = await to_unrouted(s, deps, ticket)
        who = "centre" if told == "ticket.unrouted_centre" else "coordinator"
        return t("offline.filed_unrouted", lang, number=number, who=t(f"who.{who}", lang))
    grid = deps.county.index.grid_name(ticket.grid_id)
    quiet = worker is None or worker.person_id != filer.person_id  # not the filer's own card
    if await send_card(s, deps, ticket, "card.offline", quiet=quiet) and worker is not None:
        if worker.person_id == filer.person_id:
            return t("offline.filed_self", lang, number=number, grid=grid)
        return t("offline.filed", lang, number=number, grid=grid, worker=worker.name)
    role = await tell_up(s, deps, ticket, "coord.no_worker", StaffRole.COORDINATOR, grid=grid)
    if role is None:
        return t("offline.filed_waiting", lang, number=number, grid=grid)
    return t("offline.filed_no_worker", lang, number=number, grid=grid,
             who=t(f"who.{role.value}", lang))


async def _worker(s: AsyncSession, grid_id: int, filer: Actor) -> directory.Contact | None:
    """The filer when they work that grid (they met the resident), else its first worker."""
    workers = [c for _p, c in await directory.staff(s, StaffRole.WORKER, grid_ids=[grid_id])]
    return next((c for c in workers if c.person_id == filer.person_id),
                workers[0] if workers else None)


def _community(idx: CountyIndex, candidates: list[str], posts: list[StaffAssignment]
               ) -> int | None:
    """Whose queue an unplaced report joins: the candidates' one community, else the filer's."""
    found = {idx.grids[c].community_id for c in candidates if c in idx.grids}
    if len(found) == 1:
        return found.pop()
    for p in posts:
        if p.community_id is not None:
            return p.community_id
        if p.grid_id in idx.grids_by_id:
            return idx.grids_by_id[p.grid_id].community_id
    return None


async def _attach(s: AsyncSession, ticket_id: int, ib: Inbound, now: datetime) -> None:
    s.add_all([Attachment(**row) for row in attachments(ticket_id, ib.channel, ib.media, now)])


# ------------------------------------------------------------------ photos sent right after

# the filer's latest 代报 since a time (the prefix names the filer: offline:<person id>:)
_LATEST = (select(Ticket.id, Ticket.number)
           .where(Ticket.channel == SOURCE,
                  Ticket.reporter_user_id.startswith(bindparam("filer")),
                  Ticket.created_at >= bindparam("since", type_=Ticket.created_at.type),
                  Ticket.state.not_in([S.CLOSED.value, S.REJECTED.value]))
           .order_by(Ticket.id.desc()).limit(1))


def _latest_of(person_id: int, deps: Deps) -> dict[str, Any]:
    return {"filer": f"{SOURCE}:{person_id}:", "since": deps.clock() - MEDIA_WINDOW}


async def media_may_follow(deps: Deps, ctx: Ctx, ib: Inbound) -> bool:
    """A bare photo in private from someone who filed a 代报 moments ago, and is not answering
    a question the bot asked (a resolution photo stays the resolution's)."""
    if not ib.media or ib.text.strip() or ib.chat_kind != ChatKind.PRIVATE \
            or ib.reply_to_message_id:
        return False
    async with deps.reader()() as s:
        ident = await directory.identity(s, ctx.channel, ctx.user_id)
        if ident is None or ident.person_id is None or await s.scalar(
                select(PendingInput.id).where(PendingInput.channel == ctx.channel,
                                              PendingInput.user_id == ctx.user_id,
                                              PendingInput.expires_at > deps.clock())):
            return False
        return (await s.execute(_LATEST, _latest_of(ident.person_id, deps))).first() is not None


async def add_media(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound) -> str:
    """Attach the photo to the filer's latest 代报; NotMeant when there is none after all."""
    ident = await directory.identity(s, ctx.channel, ctx.user_id)
    if ident is None or ident.person_id is None:
        raise NotMeant
    row = (await s.execute(_LATEST, _latest_of(ident.person_id, deps))).first()
    if row is None:
        raise NotMeant
    await _attach(s, row.id, ib, deps.clock())
    return t("offline.media_added", ident.language or "", number=row.number)
