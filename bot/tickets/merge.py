"""合并 NUM 到 NUM and 拆分 NUM: a manager links two reports of one problem, or undoes a link.

Intake links a new report to an open one at the same place by itself (bot.intake.coreports);
these are the hand corrections. Only those who may move both tickets (their community's
coordinators, the centre) may; a refusal says why and changes nothing.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.outbox import enqueue
from bot.deps import Ctx, Deps
from bot.notify import compose
from bot.notify.tell import tell_resident
from bot.notify.texts import register, t
from bot.people import directory
from bot.tickets.asking import clear_pending_for
from bot.tickets.assign import assign_to_grid
from bot.tickets.lifecycle import MIRRORED, Actor, Refused, merge, split
from models.enums import OPEN_STATES, Role
from models.enums import TicketState as S
from models.tickets import Ticket

VERBS = frozenset({"merge", "split"})
# what may stand between the two numbers: 合并 7 到 3, 合并 7 入 3, 合并 7→3, 合并 7 into 3
_INTO = re.compile(r"^(?:并入|併入|合并到|到|入|进|至|给|→|->|>|into|to)?\s*", re.I)
_MAY = frozenset({Role.COORDINATOR, Role.CENTRE})

ZH = {
    "coord.merge_usage": "请写上两个工单号，例如：合并 FS-20261130-0007 到 FS-20261130-0003"
                         "（把 0007 并入 0003）",
    "coord.split_usage": "请写上要拆出来的工单号，例如：拆分 FS-20261130-0007",
    "coord.merge_not_allowed": "合并和拆分由工单所在社区的工作人员或县指挥中心操作。未作改动。",
    "coord.merge_same": "两个工单号是同一张工单，未作改动。",
    "coord.merge_busy": "工单 {number} 正在被别人处理，请稍后再试。未作改动。",
    "coord.merge_closed": "工单 {number} 已{state}，不能合并。未作改动。",
    "coord.merge_follows": "工单 {number} 已并入 {into}，请写 {into}。未作改动。",
    "coord.merged": "已将工单 {number} 并入 {into}，现共 {n} 人反映，进展会一并告诉他们。",
    "coord.split_not_merged": "工单 {number} 没有并入别的工单，不用拆分。",
    "coord.split_done": "已拆分：工单 {number} 单独办理，已派给{grid}网格。",
    "coord.split_queue": "已拆分：工单 {number} 单独办理，尚未确定网格，已回到待分派。",
    "resident.merged": "您反映的问题（工单 {number}）与工单 {into} 是同一件事，已合并办理，"
                       "进展和结果会继续告诉您。",
    "resident.split": "您反映的问题已单独立为工单 {number}，会另行处理，进展会告诉您。",
    "worker.merged_away": "工单 {number} 已并入 {into}，由 {into} 一并办理，这张不用再处理了。",
}
EN = {
    "coord.merge_usage": "Please give both ticket numbers, e.g. 合并 FS-20261130-0007 到 "
                         "FS-20261130-0003 (merges 0007 into 0003)",
    "coord.split_usage": "Please give the ticket to split off, e.g. 拆分 FS-20261130-0007",
    "coord.merge_not_allowed": "Merging and splitting are for the ticket's community staff or "
                               "the command centre. Nothing was changed.",
    "coord.merge_same": "Both numbers are the same ticket. Nothing was changed.",
    "coord.merge_busy": "Ticket {number} is being changed by someone else; try again in a "
                        "moment. Nothing was changed.",
    "coord.merge_closed": "Ticket {number} is {state} and cannot be merged. Nothing was changed.",
    "coord.merge_follows": "Ticket {number} was merged into {into}; use {into}. "
                           "Nothing was changed.",
    "coord.merged": "Ticket {number} was merged into {into}; {n} residents reported it and "
                    "all of them will hear of its progress.",
    "coord.split_not_merged": "Ticket {number} is not merged into another; nothing to split.",
    "coord.split_done": "Split: ticket {number} is handled on its own, assigned to the {grid} "
                        "grid.",
    "coord.split_queue": "Split: ticket {number} is handled on its own; it has no grid yet and "
                         "is back in the unrouted queue.",
    "resident.merged": "Your report (ticket {number}) is the same matter as ticket {into}; they "
                       "are handled together and you will keep hearing of the progress.",
    "resident.split": "Your report is now ticket {number}, handled on its own; you will hear "
                      "of its progress.",
    "worker.merged_away": "Ticket {number} was merged into {into} and is handled there; you "
                          "need not act on this one.",
}
register(ZH, EN)


def target_words(rest: str) -> str:
    """The second ticket number of `合并 A 到 B`, as typed."""
    return _INTO.sub("", rest.strip(), count=1).split()[0] if rest.strip() else ""


async def _manager(s: AsyncSession, ctx: Ctx, ticket: Ticket) -> Actor:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    if not actor.roles & _MAY:
        raise Refused(t("coord.merge_not_allowed", actor.lang))
    return actor


def _mergeable(ticket: Ticket, lang: str) -> None:
    if S(ticket.state) not in OPEN_STATES or ticket.channel in MIRRORED:
        raise Refused(t("coord.merge_closed", lang, number=ticket.number,
                        state=t(f"state.{ticket.state}", lang)))


async def merge_into(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, into: Ticket
                     ) -> str:
    """合并: `ticket` (and whatever follows it) follows `into` from now on."""
    actor = await _manager(s, ctx, ticket)
    await _manager(s, ctx, into)
    if ticket.id == into.id:
        raise Refused(t("coord.merge_same", actor.lang))
    for tk in (ticket, into):
        if tk.merged_into_id is not None:
            leader = await s.get(Ticket, tk.merged_into_id)
            raise Refused(t("coord.merge_follows", actor.lang, number=tk.number,
                            into=leader.number if leader else "—"))
        _mergeable(tk, actor.lang)
    # told while the ticket's own followers still follow it, so they hear it too
    await tell_resident(s, ticket, "resident.merged", into=into.number)
    followers = list((await s.scalars(select(Ticket).where(
        Ticket.merged_into_id == ticket.id).with_for_update())).all())
    if ticket.assignee_id is not None and ticket.assignee_id != into.assignee_id \
            and S(ticket.state) != S.RETURNED:
        await _tell_worker(s, ticket, into)
    merge(s, ticket, into, actor, now=deps.clock(), cfg=deps.sla, followers=followers)
    await clear_pending_for(s, ticket.id, "place")
    await s.flush()
    n = 1 + (await s.scalar(select(func.count()).select_from(Ticket).where(
        Ticket.merged_into_id == into.id, Ticket.state == S.MERGED.value)) or 0)
    return t("coord.merged", actor.lang, number=ticket.number, into=into.number, n=n)


async def _tell_worker(s: AsyncSession, ticket: Ticket, into: Ticket) -> None:
    """The merged ticket's worker: their card is void now (only them, not their grid's other
    workers)."""
    c = await directory.contact(s, ticket.assignee_id or 0, ticket.channel)
    if c is None:
        return
    msg = compose.staff_note(c, t("worker.merged_away", c.lang, number=ticket.number,
                                  into=into.number), ticket.id)
    if msg:
        enqueue(s, msg)


async def split_off(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket) -> str:
    """拆分: a co-report becomes a ticket of its own, to its grid's worker again."""
    actor = await _manager(s, ctx, ticket)
    if S(ticket.state) != S.MERGED:
        raise Refused(t("coord.split_not_merged", actor.lang, number=ticket.number))
    split(s, ticket, actor, now=deps.clock(), cfg=deps.sla)
    idx = deps.county.index
    grid = idx.grids_by_id.get(ticket.grid_id or 0)
    if grid is None:
        await tell_resident(s, ticket, "resident.split")
        return t("coord.split_queue", actor.lang, number=ticket.number)
    await assign_to_grid(s, deps, ticket, grid.code, actor)
    await tell_resident(s, ticket, "resident.split")
    return t("coord.split_done", actor.lang, number=ticket.number,
             grid=idx.grid_name(grid.id))

