"""Getting a ticket to its grid: place answers, assigning, transferring, the unrouted queue."""

from __future__ import annotations

from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.intake.classify import place_label
from bot.messages import Action, Button, Inbound
from bot.notify import compose
from bot.notify.tell import send_card, tell_resident, tell_up
from bot.notify.texts import scoped, t
from bot.people import directory
from bot.tickets.asking import cancel_button, check, clear_pending_for, set_pending
from bot.tickets.lifecycle import Actor, Refused, place, to_queue
from models.enums import ACTIVE, Role, RouteStatus, StaffRole
from models.enums import TicketState as S
from models.tickets import Ticket


async def assign_to_grid(s: AsyncSession, deps: Deps, ticket: Ticket, grid_code: str,
                         actor: Actor, title: str = "card.title", note: str = "") -> None:
    """Route (or re-route) a ticket to a grid's first worker and hand them the card."""
    idx = deps.county.index
    grid = idx.grids.get(grid_code)
    if grid is None:
        raise Refused(t("bind.unknown", actor.lang, code=grid_code))
    workers = await directory.staff(s, StaffRole.WORKER, grid_ids=[grid.id])
    place(s, ticket, grid_id=grid.id, community_id=grid.community_id,
          assignee_id=workers[0][1].person_id if workers else None, actor=actor,
          now=deps.clock(), cfg=deps.sla, note=note)
    if not await send_card(s, deps, ticket, title, quiet=True):
        await tell_up(s, deps, ticket, "coord.no_worker", StaffRole.COORDINATOR,
                      grid=idx.grid_name(grid.id))
    await clear_pending_for(s, ticket.id, "place")


def transfer_targets(deps: Deps, ticket: Ticket) -> list[str]:
    """Where a worker may pass a ticket on: the grids around theirs (offered and accepted)."""
    idx = deps.county.index
    here = idx.grids_by_id[ticket.grid_id].code if ticket.grid_id in idx.grids_by_id else ""
    return [g for g in idx.router.neighbours(here) if g != here and g in idx.grids]


async def _transfer_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          _arg: str) -> str:
    check(ticket, S.ASSIGNED, actor, ACTIVE - {S.REOPENED})
    idx = deps.county.index
    rows = [[Button(idx.label(g), Action("transfer_to", ticket.id, g))]
            for g in transfer_targets(deps, ticket)[:8]]
    ctx.reply(s, t("worker.choose_grid", actor.lang), buttons=rows + cancel_button(ticket.id,
                                                                                  actor.lang))
    return t("worker.choose_grid", actor.lang)


async def _transfer_to(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                       arg: str) -> str:
    check(ticket, S.ASSIGNED, actor, ACTIVE - {S.REOPENED})
    if arg not in transfer_targets(deps, ticket):
        raise Refused(t("worker.not_allowed", actor.lang))
    idx = deps.county.index
    old = ticket.grid_id
    await assign_to_grid(s, deps, ticket, arg, actor, "card.transferred",
                         note=f"{idx.grid_name(old)} → {idx.grid_name(idx.grids[arg].id)}")
    await tell_resident(s, ticket, "resident.transferred", grid=idx.grid_name(ticket.grid_id))
    return t("worker.transferred", actor.lang, number=ticket.number,
             grid=idx.grid_name(ticket.grid_id))


async def _place(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                 arg: str) -> str:
    if Role.RESIDENT not in actor.roles:
        raise Refused(t("place.not_reporter", actor.lang))
    check(ticket, S.ASSIGNED, actor, {S.REPORTED})
    if arg == "-":
        told = await to_unrouted(s, deps, ticket)
        return t(told, actor.lang, number=ticket.number)
    if arg not in ticket.candidates:
        raise Refused(t("worker.not_allowed", actor.lang))
    await assign_to_grid(s, deps, ticket, arg, actor, note="resident chose")
    grid = deps.county.index.grid_name(ticket.grid_id)
    await tell_resident(s, ticket, "ticket.place_chosen", grid=grid)
    return t("ticket.place_chosen", actor.lang, number=ticket.number, grid=grid)


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
    check(ticket, S.ASSIGNED, actor, {S.REPORTED, S.RETURNED})
    # the command centre may send it anywhere; community staff only within their community
    if Role.CENTRE not in actor.roles and arg not in assign_targets(deps, ticket):
        raise Refused(t("worker.not_allowed", actor.lang))
    await assign_to_grid(s, deps, ticket, arg, actor, note="assigned by staff")
    grid = deps.county.index.grid_name(ticket.grid_id)
    await tell_resident(s, ticket, "ticket.place_chosen", grid=grid)
    return t("coord.assigned", actor.lang, number=ticket.number, grid=grid)


async def _pick_community(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          arg: str) -> str:
    """The centre routing a ticket nobody could place: first the community, then the grid."""
    if Role.CENTRE not in actor.roles or arg not in deps.county.index.communities:
        raise Refused(t("worker.not_allowed", actor.lang))
    check(ticket, S.ASSIGNED, actor, {S.REPORTED, S.RETURNED})
    idx = deps.county.index
    community_id = idx.communities[arg][0]
    rows = [[Button(idx.label(c), Action("assign", ticket.id, c))]
            for c in assign_targets(deps, ticket, community_id)]
    ctx.reply(s, t("coord.assign_to", actor.lang), buttons=rows, ticket_id=ticket.id)
    return t("coord.assign_to", actor.lang)


async def to_unrouted(s: AsyncSession, deps: Deps, ticket: Ticket) -> str:
    """No grid found in time: the community's queue, and its coordinators are told (else the
    centre). Returns the key of what the resident was told."""
    to_queue(s, ticket, now=deps.clock(), cfg=deps.sla, note="no place in time")
    await clear_pending_for(s, ticket.id, "place")
    buttons = assign_buttons(deps, ticket)
    told = await tell_up(s, deps, ticket, "coord.unrouted", StaffRole.COORDINATOR, buttons,
                         text=ticket.text[:200])
    key = "ticket.unrouted_centre" if told == StaffRole.CENTRE else "ticket.unrouted"
    await tell_resident(s, ticket, key)
    return key


def assign_buttons(deps: Deps, ticket: Ticket) -> list[list[Button]]:
    idx = deps.county.index
    codes = assign_targets(deps, ticket)
    if codes:
        return [[Button(idx.label(c), Action("assign", ticket.id, c))] for c in codes[:12]]
    # nothing to go on: let the command centre pick the community first
    return [[Button(scoped(name, "社区"), Action("pickcomm", ticket.id, code))]
            for code, (_id, name) in idx.communities.items()]


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
        ticket.place_text = place_label(ib.text, res.matched)
        await assign_to_grid(s, deps, ticket, res.grid, actor, note="resident answered")
        await tell_resident(s, ticket, "ticket.place_chosen",
                            grid=idx.grid_name(ticket.grid_id))
        return
    if res.candidates:
        ticket.candidates = list(dict.fromkeys([*res.candidates, *ticket.candidates]))
    await set_pending(s, deps, ctx, ticket.id, "place")
    key = "ticket.ask_place" if ticket.candidates else "ticket.ask_place_unknown"
    labels = [(c, idx.place_choice(c, ticket.text)) for c in ticket.candidates]
    await tell_resident(s, ticket, key, remember=True, buttons=partial(
        compose.place_buttons, ticket.id, labels) if labels else None)


HANDLERS = {
    "transfer": _transfer_start,
    "transfer_to": _transfer_to,
    "place": _place,
    "assign": _assign,
    "pickcomm": _pick_community,
}
