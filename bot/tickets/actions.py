"""What staff and residents do to a ticket: every path re-checks roles and state."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.messages import MAX_ID, Action, Button, Media
from bot.notify import compose
from bot.notify.tell import NO_CHAT_BACK, send_card, tell_resident, tell_staff, tell_up
from bot.notify.texts import category_label, t
from bot.people import directory
from bot.tickets import assign
from bot.tickets import merge as merging
from bot.tickets.asking import cancel_button, check, clear_pending_for, set_pending
from bot.tickets.lifecycle import SYSTEM, Actor, Refused, rate_co_report, record, transition
from models.enums import ACTIVE, Category, Role, Satisfaction, StaffRole
from models.enums import TicketState as S
from models.tickets import Attachment, PendingInput, Ticket
from models.transitions import STAFF, allowed


async def act(s: AsyncSession, deps: Deps, ctx: Ctx, action: Action) -> str:
    """Carry out one button press; returns the short answer shown to the presser."""
    # untrusted: an id past the column's range would fail in the driver, not as a refusal
    ticket = await s.get(Ticket, action.ticket_id, with_for_update=True) \
        if 0 < action.ticket_id <= MAX_ID else None
    if ticket is None:
        raise Refused(t("worker.not_allowed", ctx.lang))
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    handler = _HANDLERS.get(action.op)
    if handler is None:
        raise Refused(t("worker.not_allowed", ctx.lang))
    return await handler(s, deps, ctx, ticket, actor, action.arg)


async def _ack(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
               _arg: str) -> str:
    check(ticket, S.ACKNOWLEDGED, actor, {S.ASSIGNED, S.REOPENED})
    transition(s, ticket, S.ACKNOWLEDGED, actor, now=deps.clock(), cfg=deps.sla)
    await tell_resident(s, ticket, "resident.acked", worker=actor.name or "—")
    said = t("worker.acked" if deps.quoting(ctx.channel) else "worker.acked_words", actor.lang,
             number=ticket.number)
    ctx.reply(s, said, buttons=compose.worker_buttons(ticket.id, actor.lang, ticket.state),
              ticket_id=ticket.id, remember=True)
    return said


async def _resolve_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                         _arg: str) -> str:
    check(ticket, S.RESOLVED, actor, ACTIVE - {S.REOPENED} | {S.ASSIGNED})
    await set_pending(s, deps, ctx, ticket.id, "resolve")
    ctx.reply(s, t("worker.ask_resolution", actor.lang), buttons=cancel_button(ticket.id,
                                                                              actor.lang))
    return t("worker.ask_resolution", actor.lang)


async def _return_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                        _arg: str) -> str:
    check(ticket, S.RETURNED, actor, ACTIVE)
    await set_pending(s, deps, ctx, ticket.id, "return")
    ctx.reply(s, t("worker.ask_return_reason", actor.lang),
              buttons=cancel_button(ticket.id, actor.lang))
    return t("worker.ask_return_reason", actor.lang)


async def _category_start(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                          _arg: str) -> str:
    if not actor.roles & STAFF:
        raise Refused(t("worker.not_allowed", actor.lang))
    cats = list(Category)
    rows = [[Button(category_label(c.value, actor.lang), Action("setcat", ticket.id, c.name))
             for c in cats[i:i + 3]] for i in range(0, len(cats), 3)]
    ctx.reply(s, t("worker.choose_category", actor.lang), buttons=rows)
    return t("worker.choose_category", actor.lang)


async def _category_set(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                        arg: str) -> str:
    if not actor.roles & STAFF:
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
    if arg not in {x.value for x in Satisfaction}:
        raise Refused(t("worker.not_allowed", actor.lang))
    if Role.RESIDENT not in actor.roles:
        mine = await co_report_of(s, ticket, ctx.channel, ctx.user_id)
        if mine is not None:
            return await _rate_co_report(s, deps, ticket, mine, actor, arg)
    await _check_rater(s, ticket, actor)
    now = deps.clock()
    if arg == Satisfaction.UNSATISFIED:
        check(ticket, S.REOPENED, actor, {S.RESOLVED})
        ticket.satisfaction = arg
        await _reopen(s, deps, ticket, actor, arg)
        return t("resident.reopened", actor.lang, number=ticket.number)
    check(ticket, S.CLOSED, actor, {S.RESOLVED})
    ticket.satisfaction = arg
    transition(s, ticket, S.CLOSED, actor, now=now, cfg=deps.sla, note=arg)
    return t("resident.thanks", actor.lang, number=ticket.number)


async def _reopen(s: AsyncSession, deps: Deps, ticket: Ticket, actor: Actor, note: str) -> None:
    now = deps.clock()
    transition(s, ticket, S.REOPENED, actor, now=now, cfg=deps.sla, note=note)
    transition(s, ticket, S.ASSIGNED, SYSTEM, now=now, cfg=deps.sla)
    await send_card(s, deps, ticket, "card.reopened", quiet=True)
    worker = await directory.contact(s, ticket.assignee_id, ticket.channel) \
        if ticket.assignee_id else None
    await tell_staff(s, deps, StaffRole.LEADER, ticket, "leader.reopened",
                     worker=worker.name if worker else "—")


async def co_report_of(s: AsyncSession, ticket: Ticket, channel: str, user_id: str
                       ) -> Ticket | None:
    """This person's co-report (附议) following `ticket`, if they made one."""
    return await s.scalar(select(Ticket).where(
        Ticket.merged_into_id == ticket.id, Ticket.state == S.MERGED.value,
        Ticket.channel == channel, Ticket.reporter_user_id == user_id)
        .order_by(Ticket.id).limit(1).with_for_update())


async def _rate_co_report(s: AsyncSession, deps: Deps, ticket: Ticket, mine: Ticket,
                          actor: Actor, verdict: str) -> str:
    """A co-reporter rates the work on the ticket they follow. Their 不满意 reopens it while
    it waits for a verdict; once it is closed, the grid leader is asked to follow up."""
    if S(ticket.state) not in (S.RESOLVED, S.CLOSED) or ticket.resolved_at is None:
        raise Refused(t("rate.co_not_yet", actor.lang, number=ticket.number))
    if mine.closed_at is not None and mine.closed_at >= ticket.resolved_at:
        raise Refused(t("rate.co_already", actor.lang, number=ticket.number))
    rater = replace(actor, roles=frozenset({Role.RESIDENT}))
    rate_co_report(s, mine, ticket, verdict, rater, now=deps.clock())
    if verdict != Satisfaction.UNSATISFIED:
        return t("rate.co_thanks", actor.lang, number=ticket.number)
    if S(ticket.state) == S.RESOLVED:
        await _reopen(s, deps, ticket, rater, f"{verdict}（{mine.number}）")
        return t("resident.reopened", actor.lang, number=ticket.number)
    await tell_up(s, deps, ticket, "leader.co_unsatisfied", StaffRole.LEADER,
                  name=mine.reporter_name or "—")
    return t("rate.co_noted", actor.lang, number=ticket.number)


async def _check_rater(s: AsyncSession, ticket: Ticket, actor: Actor) -> None:
    """The reporter rates; a ticket a staff member reported rates their grid leader instead.

    Otherwise a worker who reported and resolved his own ticket would rate his own work.
    """
    if await directory.reported_by_staff(s, ticket):
        if Role.LEADER in actor.roles and Role.RESIDENT not in actor.roles:
            return
        raise Refused(t("rate.by_leader", actor.lang))
    if Role.RESIDENT not in actor.roles:
        raise Refused(t("rate.not_reporter", actor.lang))


async def finish_resolve(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, note: str,
                         media: list[Media]) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    check(ticket, S.RESOLVED, actor, {S.ASSIGNED, S.ACKNOWLEDGED, S.IN_PROGRESS})
    now = deps.clock()
    ev = transition(s, ticket, S.RESOLVED, actor, now=now, cfg=deps.sla, note=note)
    ticket.resolution_note = note
    await s.flush()
    photos = [m.ref(ctx.channel) for m in media if m.kind == "photo"]
    for m in media:
        s.add(Attachment(ticket_id=ticket.id, event_id=ev.id, channel=ctx.channel, kind=m.kind,
                         file_id=m.file_id, media_sha=m.sha256, role="resolution",
                         created_at=now))
    by_staff = await directory.reported_by_staff(s, ticket)
    await tell_resident(s, ticket, "resident.resolved", note=note or "—",
                        buttons=None if by_staff else partial(compose.rating_buttons, ticket.id),
                        photos=photos[:1])  # from the media store when channels differ
    if by_staff:
        await tell_staff(s, deps, StaffRole.LEADER, ticket, "leader.rate_staff_ticket",
                         compose.rating_buttons(ticket.id, ""), worker=actor.name or "—",
                         note=note or "—")
    if ticket.channel in NO_CHAT_BACK:  # 代报: nobody to confirm in a chat
        return t("worker.resolved_no_chat", actor.lang, number=ticket.number,
                 days=deps.sla.confirm_days)
    return t("worker.resolved", actor.lang, number=ticket.number)


async def finish_return(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket,
                        reason: str) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    check(ticket, S.RETURNED, actor, ACTIVE)
    transition(s, ticket, S.RETURNED, actor, now=deps.clock(), cfg=deps.sla, note=reason)
    buttons = assign.assign_buttons(deps, ticket)
    await tell_up(s, deps, ticket, "coord.returned", StaffRole.COORDINATOR, buttons,
                  worker=actor.name, note=reason)
    await tell_resident(s, ticket, "resident.returned_wait")
    return t("worker.returned", actor.lang, number=ticket.number)


async def finish_reject(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket,
                        reason: str) -> str:
    """不予受理: a coordinator or the centre closes what is not a matter for the grid."""
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    check(ticket, S.REJECTED, actor, {S.REPORTED, S.RETURNED, S.ASSIGNED})
    transition(s, ticket, S.REJECTED, actor, now=deps.clock(), cfg=deps.sla, note=reason)
    await clear_pending_for(s, ticket.id, "place")
    await tell_resident(s, ticket, "resident.rejected", note=reason)
    return t("coord.rejected", actor.lang, number=ticket.number)


async def _reject(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                  arg: str) -> str:
    """不予受理 from a form that carries the reason (the desk); in chat it is words."""
    if not arg.strip():
        raise Refused(t("words.reject_usage", actor.lang, number=ticket.number))
    return await finish_reject(s, deps, ctx, ticket, arg.strip()[:500])


async def progress_note(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, note: str,
                        media: list[Media]) -> str | None:
    """A worker's reply to the card: recorded and passed on to the resident."""
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    if not actor.roles & STAFF:
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
                         file_id=m.file_id, media_sha=m.sha256, role="progress",
                         created_at=now))
    await tell_resident(s, ticket, "resident.progress", note=note or "[图片]",
                        photos=[m.ref(ctx.channel) for m in media if m.kind == "photo"][:1])
    return t("worker.progress_saved", actor.lang, number=ticket.number)


async def _priority(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                    arg: str) -> str:
    """优先 from a form (the desk): the same checks and effects as the words."""
    from bot.tickets import coordinate  # it builds on this module
    return await coordinate.carry_out(s, deps, ctx, ticket, "priority", arg.strip())


async def _remark(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                  arg: str) -> str:
    """备注 from a form (the desk), as the words record it."""
    from bot.tickets import coordinate
    return await coordinate.carry_out(s, deps, ctx, ticket, "remark", arg.strip())


async def _merge(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                 arg: str) -> str:
    """合并 from a form (the desk): `arg` is the full number of the ticket this one joins."""
    number = arg.strip().upper()
    if not re.fullmatch(rf"{re.escape(deps.prefix)}-\d{{8}}-\d{{4,6}}", number):
        raise Refused(t("coord.merge_usage", actor.lang))
    into_id = await s.scalar(select(Ticket.id).where(Ticket.number == number))
    if into_id is None:
        raise Refused(t("status.not_found", actor.lang, number=number))
    # `ticket` is locked already; taking a lower id after it could deadlock with a 合并 the
    # other way round, so that one is taken only if free (PostgreSQL; SQLite serialises)
    try:
        into = await s.get(Ticket, into_id, populate_existing=True,
                           with_for_update={"nowait": into_id < ticket.id})
    except DBAPIError as e:
        raise Refused(t("coord.merge_busy", actor.lang, number=number)) from e
    assert into is not None
    return await merging.merge_into(s, deps, ctx, ticket, into)


async def _split(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                 arg: str) -> str:
    """拆分 from a form (the desk): the co-report pressed on becomes a ticket of its own."""
    if arg:
        raise Refused(t("worker.not_allowed", actor.lang))
    return await merging.split_off(s, deps, ctx, ticket)


_HANDLERS = {
    **assign.HANDLERS,
    "ack": _ack,
    "resolve": _resolve_start,
    "return": _return_start,
    "cat": _category_start,
    "setcat": _category_set,
    "cancel": _cancel,
    "rate": _rate,
    "reject": _reject,
    "priority": _priority,
    "remark": _remark,
    "merge": _merge,
    "split": _split,
}


OPS = frozenset(_HANDLERS)
