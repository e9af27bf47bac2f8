"""Residents asking after their tickets; coordinators looking at the unrouted queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.notify import tell
from bot.notify.compose import local
from bot.notify.texts import category_label, t
from bot.people import directory
from bot.tickets import assign
from bot.tickets.sla import URGENT
from models.enums import ACTIVE, ChatKind, Role
from models.enums import TicketState as S
from models.tickets import Ticket
from models.transitions import STAFF


def _state(ticket: Ticket, lang: str) -> str:
    if ticket.unrouted and ticket.state == S.REPORTED:
        return t("unrouted", lang)
    return t(f"state.{ticket.state}", lang)


async def my_tickets(s: AsyncSession, deps: Deps, ctx: Ctx, limit: int = 10) -> None:
    """A worker's open tickets (the ones assigned to them); otherwise what they reported."""
    ident = await directory.identity(s, ctx.channel, ctx.user_id)
    if ident is not None and ident.person_id is not None and await _assigned_list(
            s, deps, ctx, ident.person_id, limit):
        return
    rows = await _followed((await s.scalars(
        select(Ticket).where(Ticket.channel == ctx.channel, Ticket.reporter_user_id == ctx.user_id)
        .order_by(Ticket.id.desc()).limit(limit))).all(), s)
    if not rows:
        ctx.reply(s, t("my.none", ctx.lang), reply_to=ctx.message_id)
        return
    # in a group everyone reads the answer: numbers and states only, not the complaints
    group = ctx.chat_kind != ChatKind.PRIVATE
    lines = [t("my.header", ctx.lang)] + [
        t("my.line_short" if group else "my.line", ctx.lang, number=tk.number,
          state=_state(tk, ctx.lang), text=tk.text[:20] + ("…" if len(tk.text) > 20 else ""))
        for tk in rows
    ]
    ctx.reply(s, "\n".join(lines), reply_to=ctx.message_id)


async def _followed(rows: Sequence[Ticket], s: AsyncSession) -> list[Ticket]:
    """A co-report (附议) is shown as the ticket it follows, whose number its reporter was
    given; each ticket once."""
    leads = {tk.id: tk for tk in (await s.scalars(select(Ticket).where(Ticket.id.in_(
        [tk.merged_into_id for tk in rows if tk.merged_into_id is not None])))).all()}
    out: list[Ticket] = []
    for tk in rows:
        shown = leads.get(tk.merged_into_id or 0, tk)
        if shown not in out:
            out.append(shown)
    return out


async def _assigned_list(s: AsyncSession, deps: Deps, ctx: Ctx, person_id: int,
                         limit: int) -> bool:
    rows = (await s.scalars(
        select(Ticket).where(Ticket.assignee_id == person_id,
                             Ticket.state.in_([x.value for x in ACTIVE]))
        .order_by(Ticket.id).limit(limit))).all()
    if not rows:
        return False
    now = deps.clock()
    group = ctx.chat_kind != ChatKind.PRIVATE
    lines = [t("my.assigned_header", ctx.lang, n=len(rows))]
    for tk in rows:
        todo = "my.todo_ack" if tk.state in (S.ASSIGNED, S.REOPENED) else "my.todo_work"
        due = tk.ack_due_at if todo == "my.todo_ack" else tk.resolve_due_at
        late = t("my.overdue", ctx.lang) if due is not None and due < now else ""
        lines.append(t("my.line_short" if group else "my.line", ctx.lang, number=tk.number,
                       state=t(todo, ctx.lang) + late, text=tk.text[:20]
                       + ("…" if len(tk.text) > 20 else "")))
    lines.append(t("my.assigned_hint", ctx.lang))
    ctx.reply(s, "\n".join(lines), reply_to=ctx.message_id)
    return True


async def status(s: AsyncSession, deps: Deps, ctx: Ctx, number: str) -> None:
    ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None:
        ctx.reply(s, t("status.not_found", ctx.lang, number=number), reply_to=ctx.message_id)
        return
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    staff = bool(actor.roles & STAFF)
    # in a group only the reporter sees a ticket's details; staff may look it up privately
    if not (_is_reporter(ticket, ctx) or (staff and ctx.chat_kind == ChatKind.PRIVATE)
            or await _follows(s, ticket, ctx)):
        ctx.reply(s, t("status.not_yours", ctx.lang), reply_to=ctx.message_id)
        return
    if ticket.merged_into_id is not None and not staff:
        ticket = await s.get(Ticket, ticket.merged_into_id) or ticket  # what they follow
    if Role.WORKER in actor.roles and ctx.chat_kind == ChatKind.PRIVATE \
            and S(ticket.state) in ACTIVE:
        # the assignee gets the card back, buttons and all (lost after a restart or a scroll)
        await tell.send_card(s, deps, ticket)
        return
    ctx.reply(s, t("status.line", ctx.lang, number=ticket.number, state=_state(ticket, ctx.lang),
                   grid=deps.county.index.grid_name(ticket.grid_id),
                   category=category_label(ticket.category, ctx.lang), text=ticket.text[:200]),
              reply_to=ctx.message_id)


def _is_reporter(ticket: Ticket, ctx: Ctx) -> bool:
    return ticket.channel == ctx.channel and ticket.reporter_user_id == ctx.user_id


async def _follows(s: AsyncSession, ticket: Ticket, ctx: Ctx) -> bool:
    """Did this person report the same problem as a co-report of `ticket`?"""
    return await s.scalar(select(Ticket.id).where(
        Ticket.merged_into_id == ticket.id, Ticket.channel == ctx.channel,
        Ticket.reporter_user_id == ctx.user_id).limit(1)) is not None


async def follow(s: AsyncSession, deps: Deps, ctx: Ctx, number: str) -> None:
    ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or not _is_reporter(ticket, ctx):
        ctx.reply(s, t("start.welcome", ctx.lang))
        return
    ctx.reply(s, t("start.follow", ctx.lang, number=number))
    await status(s, deps, ctx, number)


async def unrouted_queue(s: AsyncSession, deps: Deps, ctx: Ctx, limit: int = 10) -> None:
    sees = await directory.oversight(s, ctx.channel, ctx.user_id)
    if not sees.any():
        ctx.reply(s, t("coord.queue_staff_only", ctx.lang))
        return
    q = select(Ticket).where(or_(Ticket.state == S.RETURNED,
                                 (Ticket.state == S.REPORTED) & Ticket.unrouted.is_(True)))
    if not sees.centre:
        # a grid leader sees what was returned in their grid: they may assign it again
        q = q.where(or_(Ticket.community_id.in_(sees.community_ids),
                        (Ticket.state == S.RETURNED) & Ticket.grid_id.in_(sees.grid_ids)))
    rows = (await s.scalars(q.order_by(Ticket.id).limit(limit))).all()
    if not rows:
        ctx.reply(s, t("coord.queue_empty", ctx.lang))
        return
    ctx.reply(s, t("coord.queue_header", ctx.lang))
    for tk in rows:
        ctx.reply(s, t("coord.unrouted", ctx.lang, number=tk.number, text=tk.text[:200]),
                  buttons=assign.assign_buttons(deps, tk), ticket_id=tk.id)


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Open and past the deadline of the step it is at (acknowledging, or resolving)."""
    return or_(and_(Ticket.state.in_([S.ASSIGNED.value, S.REOPENED.value]),
                    Ticket.ack_due_at < now),
               and_(Ticket.state.in_([S.ACKNOWLEDGED.value, S.IN_PROGRESS.value]),
                    Ticket.resolve_due_at < now))


async def overdue_list(s: AsyncSession, deps: Deps, ctx: Ctx, limit: int = 15) -> None:
    """超时: overdue tickets, scoped as the unrouted queue is; the longest overdue first."""
    sees = await directory.oversight(s, ctx.channel, ctx.user_id)
    if not sees.any():
        ctx.reply(s, t("coord.overdue_staff_only", ctx.lang), reply_to=ctx.message_id)
        return
    now = deps.clock()
    where = and_(overdue_clause(now), sees.tickets())
    total = await s.scalar(select(func.count()).select_from(Ticket).where(where)) or 0
    if not total:
        ctx.reply(s, t("coord.overdue_none", ctx.lang), reply_to=ctx.message_id)
        return
    due = case((Ticket.state.in_([S.ASSIGNED.value, S.REOPENED.value]), Ticket.ack_due_at),
               else_=Ticket.resolve_due_at)
    rows = (await s.scalars(select(Ticket).where(where).order_by(due, Ticket.id)
                            .limit(limit))).all()
    idx = deps.county.index
    # in a group everyone reads the answer: numbers and places only, not the complaints
    line = "coord.overdue_line" if ctx.chat_kind == ChatKind.PRIVATE else "coord.overdue_short"
    lines = [t("coord.overdue_header", ctx.lang, n=total, shown=len(rows))]
    for tk in rows:
        acking = tk.state in (S.ASSIGNED, S.REOPENED)
        lines.append(t(line, ctx.lang, number=tk.number,
                       grid=idx.grid_name(tk.grid_id),
                       what=t("coord.overdue_ack" if acking else "coord.overdue_resolve",
                              ctx.lang),
                       due=local(tk.ack_due_at if acking else tk.resolve_due_at, deps.sla.tz),
                       urgent=t("coord.urgent_mark", ctx.lang) if tk.priority == URGENT
                       else "", text=tk.text[:20] + ("…" if len(tk.text) > 20 else "")))
    lines.append(t("coord.overdue_hint", ctx.lang))
    ctx.reply(s, "\n".join(lines), reply_to=ctx.message_id)
