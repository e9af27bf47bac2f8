"""What staff and residents do to a ticket: every path re-checks roles and state."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory, notify
from bot.deps import Ctx, Deps
from bot.lifecycle import SYSTEM, Actor, record, transition
from bot.messages import Action, Button, Inbound, Media
from bot.outbox import enqueue
from bot.sqlutil import insert_for
from bot.texts import category_label, t
from models.enums import Category, Role, RouteStatus, Satisfaction, StaffRole
from models.enums import TicketState as S
from models.people import Identity
from models.tickets import Attachment, PendingInput, Ticket
from models.transitions import TRANSITIONS, allowed

INPUT_MINUTES = 30
ACTIVE = {S.ASSIGNED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.REOPENED}


class Refused(Exception):
    """A polite no for the person who tapped; nothing was changed."""


async def resident_chat(s: AsyncSession, ticket: Ticket) -> str | None:
    return await s.scalar(select(Identity.private_chat_id).where(
        Identity.channel == ticket.channel, Identity.user_id == ticket.reporter_user_id))


async def tell_resident(s: AsyncSession, ticket: Ticket, text: str,
                        buttons: list[list[Button]] | None = None,
                        photos: list[str] | None = None, remember: bool = False) -> None:
    msg = notify.to_resident(ticket, await resident_chat(s, ticket), text, buttons, remember)
    msg.photos = list(photos or [])
    enqueue(s, msg)


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
        msg = notify.staff_note(c, t(key, c.lang, number=ticket.number, **kw), ticket.id, buttons)
        if msg:
            enqueue(s, msg)
            sent += 1
    return sent


async def send_card(s: AsyncSession, deps: Deps, ticket: Ticket, title: str = "card.title") -> bool:
    if ticket.assignee_id is None:
        return False
    c = await directory.contact(s, ticket.assignee_id, ticket.channel)
    idx = deps.county.index
    code = idx.grids_by_id[ticket.grid_id].code if ticket.grid_id in idx.grids_by_id else None
    photos = list((await s.scalars(select(Attachment.file_id).where(
        Attachment.ticket_id == ticket.id, Attachment.kind == "photo",
        Attachment.role == "report"))).all())
    card = notify.worker_card(ticket, c, idx.label(code), deps.sla.tz, title, photos[:1]) \
        if c else None
    if card is None:
        return False
    enqueue(s, card)
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


async def assign_to_grid(s: AsyncSession, deps: Deps, ticket: Ticket, grid_code: str,
                         actor: Actor, title: str = "card.title", note: str = "") -> None:
    """Route (or re-route) a ticket to a grid's first worker and hand them the card."""
    idx = deps.county.index
    grid = idx.grids.get(grid_code)
    if grid is None:
        raise Refused(t("bind.unknown", actor.lang, code=grid_code))
    workers = await directory.staff(s, StaffRole.WORKER, grid_ids=[grid.id])
    ticket.grid_id = grid.id
    ticket.community_id = grid.community_id
    ticket.assignee_id = workers[0][1].person_id if workers else None
    ticket.unrouted = False
    ticket.route_status = "routed"
    transition(s, ticket, S.ASSIGNED, actor, now=deps.clock(), cfg=deps.sla, note=note)
    if not await send_card(s, deps, ticket, title):
        await tell_staff(s, deps, StaffRole.COORDINATOR, ticket, "coord.no_worker",
                         grid=grid.name)
    await clear_pending_for(s, ticket.id, "place")


async def set_pending(s: AsyncSession, deps: Deps, ctx: Ctx, ticket_id: int, action: str,
                      minutes: int = INPUT_MINUTES) -> None:
    stmt = insert_for(s, PendingInput).values(
        channel=ctx.channel, user_id=ctx.user_id, ticket_id=ticket_id, action=action,
        expires_at=deps.clock() + timedelta(minutes=minutes))
    await s.execute(stmt.on_conflict_do_update(
        index_elements=["channel", "user_id"],
        set_={"ticket_id": ticket_id, "action": action, "expires_at": stmt.excluded.expires_at}))


async def clear_pending_for(s: AsyncSession, ticket_id: int, action: str) -> None:
    await s.execute(delete(PendingInput).where(PendingInput.ticket_id == ticket_id,
                                               PendingInput.action == action))


def _check(ticket: Ticket, to: S, actor: Actor, expect: set[S]) -> None:
    # who may ever do this comes first, so a stranger learns nothing about the ticket's state
    if not any(target == to and roles & actor.roles for (_f, target), roles in TRANSITIONS.items()):
        raise Refused(t("worker.not_allowed", actor.lang))
    state = S(ticket.state)
    if state not in expect:
        raise Refused(t("worker.stale", actor.lang, state=t(f"state.{state.value}", actor.lang)))
    if not allowed(state, to, actor.roles):
        raise Refused(t("worker.not_allowed", actor.lang))


def cancel_button(ticket_id: int, lang: str) -> list[list[Button]]:
    return [[Button(t("btn.cancel", lang), Action("cancel", ticket_id))]]


async def act(s: AsyncSession, deps: Deps, ctx: Ctx, action: Action) -> str:
    """Carry out one button press; returns the short answer shown to the presser."""
    ticket = await s.get(Ticket, action.ticket_id, with_for_update=True) \
        if action.ticket_id else None
    if ticket is None:
        raise Refused(t("worker.not_allowed", ctx.lang))
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    handler = _HANDLERS.get(action.op)
    if handler is None:
        raise Refused(t("worker.not_allowed", ctx.lang))
    return await handler(s, deps, ctx, ticket, actor, action.arg)


async def _ack(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
               _arg: str) -> str:
    _check(ticket, S.ACKNOWLEDGED, actor, {S.ASSIGNED, S.REOPENED})
    transition(s, ticket, S.ACKNOWLEDGED, actor, now=deps.clock(), cfg=deps.sla)
    await tell_resident(s, ticket, t("resident.acked", "zh", number=ticket.number,
                                     worker=actor.name or "—"))
    ctx.reply(s, t("worker.acked", actor.lang, number=ticket.number),
              buttons=notify.worker_buttons(ticket.id, actor.lang, ticket.state),
              ticket_id=ticket.id, remember=True)
    return t("worker.acked", actor.lang, number=ticket.number)


async def _resolve_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                         _arg: str) -> str:
    _check(ticket, S.RESOLVED, actor, ACTIVE - {S.REOPENED} | {S.ASSIGNED})
    await set_pending(s, deps, ctx, ticket.id, "resolve")
    ctx.reply(s, t("worker.ask_resolution", actor.lang), buttons=cancel_button(ticket.id,
                                                                              actor.lang))
    return t("worker.ask_resolution", actor.lang)


async def _return_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                        _arg: str) -> str:
    _check(ticket, S.RETURNED, actor, ACTIVE)
    await set_pending(s, deps, ctx, ticket.id, "return")
    ctx.reply(s, t("worker.ask_return_reason", actor.lang),
              buttons=cancel_button(ticket.id, actor.lang))
    return t("worker.ask_return_reason", actor.lang)


def transfer_targets(deps: Deps, ticket: Ticket) -> list[str]:
    """Where a worker may pass a ticket on: the grids around theirs (offered and accepted)."""
    idx = deps.county.index
    here = idx.grids_by_id[ticket.grid_id].code if ticket.grid_id in idx.grids_by_id else ""
    return [g for g in idx.router.neighbours(here) if g != here and g in idx.grids]


async def _transfer_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          _arg: str) -> str:
    _check(ticket, S.ASSIGNED, actor, ACTIVE - {S.REOPENED})
    idx = deps.county.index
    rows = [[Button(idx.label(g), Action("transfer_to", ticket.id, g))]
            for g in transfer_targets(deps, ticket)[:8]]
    ctx.reply(s, t("worker.choose_grid", actor.lang), buttons=rows + cancel_button(ticket.id,
                                                                                  actor.lang))
    return t("worker.choose_grid", actor.lang)


async def _transfer_to(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                       arg: str) -> str:
    _check(ticket, S.ASSIGNED, actor, ACTIVE - {S.REOPENED})
    if arg not in transfer_targets(deps, ticket):
        raise Refused(t("worker.not_allowed", actor.lang))
    idx = deps.county.index
    old = ticket.grid_id
    await assign_to_grid(s, deps, ticket, arg, actor, "card.transferred",
                         note=f"{idx.grid_name(old)} → {idx.grid_name(idx.grids[arg].id)}")
    await tell_resident(s, ticket, t("resident.transferred", "zh", number=ticket.number,
                                     grid=idx.grid_name(ticket.grid_id)))
    return t("worker.transferred", actor.lang, number=ticket.number,
             grid=idx.grid_name(ticket.grid_id))


async def _category_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          _arg: str) -> str:
    if not actor.roles & {Role.WORKER, Role.LEADER, Role.COORDINATOR, Role.CENTRE}:
        raise Refused(t("worker.not_allowed", actor.lang))
    cats = list(Category)
    rows = [[Button(category_label(c.value, actor.lang), Action("setcat", ticket.id, c.name))
             for c in cats[i:i + 3]] for i in range(0, len(cats), 3)]
    ctx.reply(s, t("worker.choose_category", actor.lang), buttons=rows)
    return t("worker.choose_category", actor.lang)


async def _category_set(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                        arg: str) -> str:
    if not actor.roles & {Role.WORKER, Role.LEADER, Role.COORDINATOR, Role.CENTRE}:
        raise Refused(t("worker.not_allowed", actor.lang))
    if arg not in Category.__members__:
        raise Refused(t("worker.not_allowed", actor.lang))
    new = Category[arg].value
    record(s, ticket, actor, "category", now=deps.clock(), note=f"{ticket.category} → {new}")
    ticket.category = new
    return t("worker.category_set", actor.lang, category=category_label(new, actor.lang))


async def _cancel(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                  _arg: str) -> str:
    await s.execute(delete(PendingInput).where(PendingInput.channel == ctx.channel,
                                               PendingInput.user_id == ctx.user_id))
    return t("worker.cancelled", actor.lang)


async def _rate(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                arg: str) -> str:
    if Role.RESIDENT not in actor.roles:
        raise Refused(t("status.not_yours", actor.lang))
    if arg not in {x.value for x in Satisfaction}:
        raise Refused(t("worker.not_allowed", actor.lang))
    now = deps.clock()
    if arg == Satisfaction.UNSATISFIED:
        _check(ticket, S.REOPENED, actor, {S.RESOLVED})
        ticket.satisfaction = arg
        transition(s, ticket, S.REOPENED, actor, now=now, cfg=deps.sla, note=arg)
        transition(s, ticket, S.ASSIGNED, SYSTEM, now=now, cfg=deps.sla)
        await send_card(s, deps, ticket, "card.reopened")
        worker = await directory.contact(s, ticket.assignee_id, ticket.channel) \
            if ticket.assignee_id else None
        await tell_staff(s, deps, StaffRole.LEADER, ticket, "leader.reopened",
                         worker=worker.name if worker else "—")
        return t("resident.reopened", actor.lang, number=ticket.number)
    _check(ticket, S.CLOSED, actor, {S.RESOLVED})
    ticket.satisfaction = arg
    transition(s, ticket, S.CLOSED, actor, now=now, cfg=deps.sla, note=arg)
    return t("resident.thanks", actor.lang, number=ticket.number)


async def _place(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                 arg: str) -> str:
    if Role.RESIDENT not in actor.roles:
        raise Refused(t("status.not_yours", actor.lang))
    _check(ticket, S.ASSIGNED, actor, {S.REPORTED})
    if arg == "-":
        await to_unrouted(s, deps, ticket)
        return t("ticket.unrouted", actor.lang, number=ticket.number)
    if arg not in ticket.candidates:
        raise Refused(t("worker.not_allowed", actor.lang))
    await assign_to_grid(s, deps, ticket, arg, actor, note="resident chose")
    text = t("ticket.place_chosen", actor.lang, number=ticket.number,
             grid=deps.county.index.grid_name(ticket.grid_id))
    await tell_resident(s, ticket, text)
    return text


def assign_targets(deps: Deps, ticket: Ticket, community_id: int | None = None) -> list[str]:
    """Grids staff may hand a ticket to: the router's candidates, then the community's grids."""
    idx = deps.county.index
    community_id = community_id if community_id is not None else ticket.community_id
    codes = [c for c in ticket.candidates or [] if c in idx.grids]
    codes += [g.code for g in idx.grids.values() if g.community_id == community_id]
    return list(dict.fromkeys(codes))


async def _assign(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                  arg: str) -> str:
    if not actor.roles & {Role.COORDINATOR, Role.CENTRE, Role.LEADER}:
        raise Refused(t("worker.not_allowed", actor.lang))
    _check(ticket, S.ASSIGNED, actor, {S.REPORTED, S.RETURNED})
    # the command centre may send it anywhere; community staff only within their community
    if Role.CENTRE not in actor.roles and arg not in assign_targets(deps, ticket):
        raise Refused(t("worker.not_allowed", actor.lang))
    await assign_to_grid(s, deps, ticket, arg, actor, note="assigned by staff")
    grid = deps.county.index.grid_name(ticket.grid_id)
    await tell_resident(s, ticket, t("ticket.place_chosen", "zh", number=ticket.number,
                                     grid=grid))
    return t("coord.assigned", actor.lang, number=ticket.number, grid=grid)


async def _pick_community(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          arg: str) -> str:
    """The centre routing a ticket nobody could place: first the community, then the grid."""
    if Role.CENTRE not in actor.roles or arg not in deps.county.index.communities:
        raise Refused(t("worker.not_allowed", actor.lang))
    _check(ticket, S.ASSIGNED, actor, {S.REPORTED, S.RETURNED})
    idx = deps.county.index
    community_id = idx.communities[arg][0]
    rows = [[Button(idx.label(c), Action("assign", ticket.id, c))]
            for c in assign_targets(deps, ticket, community_id)]
    ctx.reply(s, t("coord.assign_to", actor.lang), buttons=rows, ticket_id=ticket.id)
    return t("coord.assign_to", actor.lang)


async def to_unrouted(s: AsyncSession, deps: Deps, ticket: Ticket) -> None:
    """No grid found in time: the community's queue, and its coordinators are told."""
    ticket.unrouted = True
    ticket.escalation_at = None
    await clear_pending_for(s, ticket.id, "place")
    buttons = await assign_buttons(deps, ticket)
    sent = await tell_staff(s, deps, StaffRole.COORDINATOR, ticket, "coord.unrouted",
                            buttons=buttons, text=ticket.text[:200])
    if not sent:
        await tell_staff(s, deps, StaffRole.CENTRE, ticket, "coord.unrouted", buttons=buttons,
                         text=ticket.text[:200])
    await tell_resident(s, ticket, t("ticket.unrouted", "zh", number=ticket.number))


async def assign_buttons(deps: Deps, ticket: Ticket) -> list[list[Button]]:
    idx = deps.county.index
    codes = assign_targets(deps, ticket)
    if codes:
        return [[Button(idx.label(c), Action("assign", ticket.id, c))] for c in codes[:12]]
    # nothing to go on: let the command centre pick the community first
    return [[Button(f"{name}社区", Action("pickcomm", ticket.id, code))]
            for code, (_id, name) in idx.communities.items()]


# -- answers typed after a button asked for them ---------------------------------------------

async def answer_place(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound,
                       ticket: Ticket) -> None:
    """The reporter's answer to "where is it?": a place name or a shared location."""
    if S(ticket.state) != S.REPORTED or ticket.reporter_user_id != ctx.user_id:
        return
    idx = deps.county.index
    res = idx.router.route(ib.text, location=ib.location)
    if res.status == RouteStatus.ROUTED and res.grid:
        actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
        if ib.location:
            ticket.lat, ticket.lon, ticket.datum = (ib.location.lat, ib.location.lon,
                                                    ib.location.datum)
        ticket.place_text = "、".join(m for m in res.matched if m not in ("chat", "location"))
        await assign_to_grid(s, deps, ticket, res.grid, actor, note="resident answered")
        await tell_resident(s, ticket, t(
            "ticket.place_chosen", ctx.lang, number=ticket.number,
            grid=idx.grid_name(ticket.grid_id)))
        return
    if res.candidates:
        ticket.candidates = list(dict.fromkeys([*res.candidates, *ticket.candidates]))
    await set_pending(s, deps, ctx, ticket.id, "place")
    key = "ticket.ask_place" if ticket.candidates else "ticket.ask_place_unknown"
    await tell_resident(
        s, ticket, t(key, ctx.lang, number=ticket.number),
        notify.place_buttons(ticket.id, [(c, idx.label(c)) for c in ticket.candidates],
                             ctx.lang) if ticket.candidates else None, remember=True)


async def finish_resolve(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, note: str,
                         media: list[Media]) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    _check(ticket, S.RESOLVED, actor, {S.ASSIGNED, S.ACKNOWLEDGED, S.IN_PROGRESS})
    now = deps.clock()
    ev = transition(s, ticket, S.RESOLVED, actor, now=now, cfg=deps.sla, note=note)
    ticket.resolution_note = note
    await s.flush()
    photos = [m.file_id for m in media if m.kind == "photo"]
    for m in media:
        s.add(Attachment(ticket_id=ticket.id, event_id=ev.id, channel=ctx.channel, kind=m.kind,
                         file_id=m.file_id, role="resolution", created_at=now))
    await tell_resident(s, ticket, t("resident.resolved", "zh", number=ticket.number,
                                     note=note or "—"),
                        notify.rating_buttons(ticket.id, "zh"),
                        photos=photos[:1] if ticket.channel == ctx.channel else None)
    return t("worker.resolved", actor.lang, number=ticket.number)


async def finish_return(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket,
                        reason: str) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    _check(ticket, S.RETURNED, actor, ACTIVE)
    transition(s, ticket, S.RETURNED, actor, now=deps.clock(), cfg=deps.sla, note=reason)
    ticket.assignee_id = None
    buttons = await assign_buttons(deps, ticket)
    sent = await tell_staff(s, deps, StaffRole.COORDINATOR, ticket, "coord.returned",
                            buttons=buttons, worker=actor.name, note=reason)
    if not sent:
        await tell_staff(s, deps, StaffRole.CENTRE, ticket, "coord.returned", buttons=buttons,
                         worker=actor.name, note=reason)
    await tell_resident(s, ticket, t("resident.returned_wait", "zh", number=ticket.number))
    return t("worker.returned", actor.lang, number=ticket.number)


async def progress_note(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, note: str,
                        media: list[Media]) -> str | None:
    """A worker's reply to the card: recorded and passed on to the resident."""
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    if not actor.roles & {Role.WORKER, Role.LEADER, Role.COORDINATOR, Role.CENTRE}:
        return None
    if S(ticket.state) not in ACTIVE:
        raise Refused(t("worker.stale", actor.lang,
                        state=t(f"state.{ticket.state}", actor.lang)))
    now = deps.clock()
    if S(ticket.state) in (S.ACKNOWLEDGED,) and allowed(S.ACKNOWLEDGED, S.IN_PROGRESS,
                                                          actor.roles):
        ev = transition(s, ticket, S.IN_PROGRESS, actor, now=now, cfg=deps.sla, note=note)
    else:
        ev = record(s, ticket, actor, "note", now=now, note=note)
    await s.flush()
    for m in media:
        s.add(Attachment(ticket_id=ticket.id, event_id=ev.id, channel=ctx.channel, kind=m.kind,
                         file_id=m.file_id, role="progress", created_at=now))
    await tell_resident(s, ticket, t("resident.progress", "zh", number=ticket.number,
                                     note=note or "[图片]"),
                        photos=[m.file_id for m in media if m.kind == "photo"][:1])
    return t("worker.progress_saved", actor.lang, number=ticket.number)


_HANDLERS = {
    "ack": _ack,
    "resolve": _resolve_start,
    "return": _return_start,
    "transfer": _transfer_start,
    "transfer_to": _transfer_to,
    "cat": _category_start,
    "setcat": _category_set,
    "cancel": _cancel,
    "rate": _rate,
    "place": _place,
    "assign": _assign,
    "pickcomm": _pick_community,
}
OPS = frozenset(_HANDLERS)

