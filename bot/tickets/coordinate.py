"""A coordinator's words on a ticket: 改派 (reassign), 优先 (priority), 备注 (internal note).

Authorised here from the server's records: the actor must manage the ticket (a coordinator of
its community, the leader of its grid, or the centre) and, for 改派, the grid it goes to.
A refusal says why and changes nothing (the caller's transaction is rolled back).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.index import CountyIndex, GridInfo
from bot.delivery.outbox import enqueue
from bot.deps import Ctx, Deps
from bot.messages import Action
from bot.notify import compose
from bot.notify.compose import local
from bot.notify.tell import send_card, tell_resident, tell_up
from bot.notify.texts import register, scoped, t
from bot.people import directory
from bot.tickets import actions
from bot.tickets.asking import check, clear_pending_for
from bot.tickets.lifecycle import Actor, Refused, place, record, set_priority
from bot.tickets.sla import NORMAL, URGENT
from models.enums import ACTIVE, StaffRole
from models.enums import TicketState as S
from models.people import StaffAssignment
from models.tickets import Ticket
from models.transitions import MANAGERS

VERBS = frozenset({"reassign", "priority", "remark"})
PRIORITY_WORDS = {"紧急": URGENT, "急": URGENT, "加急": URGENT,
                  "一般": NORMAL, "普通": NORMAL, "正常": NORMAL}

ZH = {
    "coord.reassign_usage": "请写上工单号和改派给谁，例如：改派 FS-20261130-0007 南关网格"
                            " 或 改派 7 张三",
    "coord.priority_usage": "请写上工单号和紧急或一般，例如：优先 7 紧急",
    "coord.remark_usage": "请写上工单号和备注，例如：备注 7 已电话联系报事人",
    "coord.out_of_scope": "工单 {number} 不归您管：社区工作人员管本社区，网格长管本网格，"
                          "指挥中心管全县。未作改动。",
    "coord.target_out_of_scope": "{grid}网格不归您管，不能改派过去。未作改动。",
    "coord.no_target": "没有找到“{name}”这个网格或网格员。请写网格名（如 南关网格）或网格员姓名。",
    "coord.which_grid": "有几位网格员叫{name}（{grids}），请写上网格，"
                        "例如：改派 {number} {grid}网格 {name}",
    "coord.reassign_same": "工单 {number} 已经在{grid}网格{name}手上，未作改动。",
    "coord.reassigned": "已改派：{number} → {grid}网格{name}。",
    "coord.priority_same": "工单 {number} 已经是{priority}，未作改动。",
    "coord.priority_set": "已将工单 {number} 设为{priority}。{due}",
    "coord.due_ack": "接单时限 {ack}，办结时限 {resolve}。",
    "coord.due_resolve": "办结时限 {resolve}。",
    "coord.due_later": "派单后开始计时。",
    "coord.remarked": "已记下工单 {number} 的备注（仅工作人员可见）。",
    "coord.overdue_staff_only": "超时工单由社区工作人员、网格长和县指挥中心查看。",
    "coord.overdue_none": "没有超时工单。",
    "coord.overdue_header": "超时工单共 {n} 张（列出 {shown} 张）：",
    "coord.overdue_line": "{urgent}{number}｜{grid}网格｜{what}，时限 {due}｜{text}",
    "coord.overdue_short": "{urgent}{number}｜{grid}网格｜{what}，时限 {due}",
    "coord.overdue_ack": "未接单",
    "coord.overdue_resolve": "未办结",
    "coord.urgent_mark": "【紧急】",
    "coord.overdue_hint": "可回复：改派 工单号 网格或姓名；优先 工单号 紧急；备注 工单号 内容",
    "priority.urgent": "紧急",
    "priority.normal": "一般",
    "card.reassigned": "【改派工单】{number}",
    "worker.reassigned_away": "工单 {number} 已改派给{grid}网格{name}，您不用再处理了。",
    "worker.priority_changed": "工单 {number} 已改为{priority}。{due}",
}
EN = {
    "coord.reassign_usage": "Please give the ticket number and where it goes, "
                            "e.g. 改派 FS-20261130-0007 南关网格 or 改派 7 张三",
    "coord.priority_usage": "Please give the ticket number and 紧急 (urgent) or 一般 (normal), "
                            "e.g. 优先 7 紧急",
    "coord.remark_usage": "Please give the ticket number and the note, "
                          "e.g. 备注 7 called the reporter",
    "coord.out_of_scope": "Ticket {number} is not yours to manage: coordinators manage their "
                          "community, leaders their grid, the centre the county. "
                          "Nothing was changed.",
    "coord.target_out_of_scope": "The {grid} grid is not yours to manage; the ticket cannot go "
                                 "there. Nothing was changed.",
    "coord.no_target": "No grid or grid worker called \"{name}\". Give a grid's name "
                       "(e.g. 南关网格) or a worker's name.",
    "coord.which_grid": "Several workers are called {name} ({grids}); add the grid, "
                        "e.g. 改派 {number} {grid}网格 {name}",
    "coord.reassign_same": "Ticket {number} is already with {name} in the {grid} grid; "
                           "nothing was changed.",
    "coord.reassigned": "Reassigned: {number} → {grid} grid {name}.",
    "coord.priority_same": "Ticket {number} is already {priority}; nothing was changed.",
    "coord.priority_set": "Ticket {number} is now {priority}. {due}",
    "coord.due_ack": "Acknowledge by {ack}, resolve by {resolve}.",
    "coord.due_resolve": "Resolve by {resolve}.",
    "coord.due_later": "Its deadlines start when it is assigned.",
    "coord.remarked": "Note saved on ticket {number} (staff only).",
    "coord.overdue_staff_only": "The overdue list is for community staff, grid leaders and "
                                "the command centre.",
    "coord.overdue_none": "No overdue tickets.",
    "coord.overdue_header": "{n} overdue tickets ({shown} shown):",
    "coord.overdue_line": "{urgent}{number} | {grid} grid | {what}, due {due} | {text}",
    "coord.overdue_short": "{urgent}{number} | {grid} grid | {what}, due {due}",
    "coord.overdue_ack": "not acknowledged",
    "coord.overdue_resolve": "not resolved",
    "coord.urgent_mark": "[Urgent] ",
    "coord.overdue_hint": "Reply 改派 NUMBER grid-or-name, 优先 NUMBER 紧急, or 备注 NUMBER note",
    "priority.urgent": "urgent",
    "priority.normal": "normal",
    "card.reassigned": "[Reassigned] {number}",
    "worker.reassigned_away": "Ticket {number} was reassigned to {name} ({grid} grid); "
                              "you need not act on it.",
    "worker.priority_changed": "Ticket {number} is now {priority}. {due}",
}
register(ZH, EN)


async def carry_out(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, verb: str,
                    rest: str) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    if not actor.roles & MANAGERS:
        raise Refused(t("coord.out_of_scope", actor.lang, number=ticket.number))
    if not rest:
        raise Refused(t(f"coord.{verb}_usage", actor.lang))
    if verb == "remark":
        record(s, ticket, actor, "remark", now=deps.clock(), note=rest[:500])
        return t("coord.remarked", actor.lang, number=ticket.number)
    if verb == "priority":
        return await _priority(s, deps, ticket, actor, rest)
    return await _reassign(s, deps, ctx, ticket, actor, rest)


def due_text(ticket: Ticket, deps: Deps, lang: str) -> str:
    tz = deps.sla.tz
    if ticket.state in (S.ASSIGNED, S.REOPENED):
        return t("coord.due_ack", lang, ack=local(ticket.ack_due_at, tz),
                 resolve=local(ticket.resolve_due_at, tz))
    if S(ticket.state) in ACTIVE:
        return t("coord.due_resolve", lang, resolve=local(ticket.resolve_due_at, tz))
    return t("coord.due_later", lang)


async def _priority(s: AsyncSession, deps: Deps, ticket: Ticket, actor: Actor,
                    rest: str) -> str:
    priority = PRIORITY_WORDS.get(rest.split()[0])
    if priority is None:
        raise Refused(t("coord.priority_usage", actor.lang))
    if priority == ticket.priority:  # said plainly here; lifecycle only says "not allowed"
        raise Refused(t("coord.priority_same", actor.lang, number=ticket.number,
                        priority=t(f"priority.{priority}", actor.lang)))
    set_priority(s, ticket, priority, actor, now=deps.clock(), cfg=deps.sla)
    if ticket.assignee_id is not None and ticket.assignee_id != actor.person_id:
        c = await directory.contact(s, ticket.assignee_id, ticket.channel)
        note = c and compose.staff_note(c, t(
            "worker.priority_changed", c.lang, number=ticket.number,
            priority=t(f"priority.{priority}", c.lang), due=due_text(ticket, deps, c.lang)),
            ticket.id)
        if note:
            enqueue(s, note)
    return t("coord.priority_set", actor.lang, number=ticket.number,
             priority=t(f"priority.{priority}", actor.lang),
             due=due_text(ticket, deps, actor.lang))


async def _reassign(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, actor: Actor,
                    rest: str) -> str:
    idx = deps.county.index
    named, name = _grid_and_name(idx, rest)
    person: directory.Contact | None = None
    if name:
        grid, person = await _worker(s, idx, named, name, ticket.number, actor.lang)
    elif named is not None:
        grid = named
    else:
        raise Refused(t("coord.reassign_usage", actor.lang))
    roles = await directory.standing_roles(s, ctx.channel, ctx.user_id)
    if not _manages(roles, grid):
        raise Refused(t("coord.target_out_of_scope", actor.lang, grid=idx.grid_name(grid.id)))
    state = S(ticket.state)
    if person is None and state in (S.REPORTED, S.RETURNED):
        # what the assign button does, with the button's own checks
        return await actions.act(s, deps, ctx, Action("assign", ticket.id, grid.code))
    check(ticket, S.ASSIGNED, actor, ACTIVE | {S.REPORTED, S.RETURNED})
    if person is None:
        workers = _reachable_first(await directory.staff(s, StaffRole.WORKER,
                                                         grid_ids=[grid.id]))
        person = workers[0][1] if workers else None
    before_grid, before = ticket.grid_id, ticket.assignee_id
    if grid.id == before_grid and person is not None and person.person_id == before:
        raise Refused(t("coord.reassign_same", actor.lang, number=ticket.number,
                        grid=idx.grid_name(grid.id), name=person.name))
    who = person.name if person else ""
    place(s, ticket, grid_id=grid.id, community_id=grid.community_id,
          assignee_id=person.person_id if person else None, actor=actor, now=deps.clock(),
          cfg=deps.sla, note=f"改派：{idx.grid_name(before_grid)} → {idx.grid_name(grid.id)}{who}")
    if not await send_card(s, deps, ticket, "card.reassigned", quiet=True):
        await tell_up(s, deps, ticket, "coord.no_worker", StaffRole.COORDINATOR,
                      grid=idx.grid_name(grid.id))
    await clear_pending_for(s, ticket.id, "place")
    if before is not None and before != ticket.assignee_id:
        old = await directory.contact(s, before, ticket.channel)
        note = old and compose.staff_note(old, t(
            "worker.reassigned_away", old.lang, number=ticket.number,
            grid=idx.grid_name(grid.id), name=who), ticket.id)
        if note:
            enqueue(s, note)
    if grid.id != before_grid:
        await tell_resident(s, ticket, "resident.transferred", grid=idx.grid_name(grid.id))
    return t("coord.reassigned", actor.lang, number=ticket.number,
             grid=idx.grid_name(grid.id), name=who)


def _grid_and_name(idx: CountyIndex, rest: str) -> tuple[GridInfo | None, str]:
    """`南关网格 张三`, `南关网格张三`, `FN-02`, `张三` -> (the grid named first, a person)."""
    first, _, more = rest.strip().partition(" ")
    if first.upper() in idx.grids:
        return idx.grids[first.upper()], more.strip()
    for g in sorted(idx.grids.values(), key=lambda g: len(g.name), reverse=True):
        for spelled in (scoped(g.name, "网格"), g.name):
            if first.startswith(spelled):
                return g, (first[len(spelled):] + " " + more).strip()
    return None, first


async def _worker(s: AsyncSession, idx: CountyIndex, grid: GridInfo | None, name: str,
                  number: str, lang: str) -> tuple[GridInfo, directory.Contact]:
    """The grid worker called `name` (in `grid`, when one was named)."""
    name = name.split()[0]
    found = _reachable_first([(p, c) for p, c in await directory.staff(
        s, StaffRole.WORKER, grid_ids=[grid.id] if grid else ()) if c.name == name])
    grids = {p.grid_id for p, _c in found if p.grid_id in idx.grids_by_id}
    if not grids:
        raise Refused(t("coord.no_target", lang, name=name))
    if len(grids) > 1:
        names = sorted(idx.grid_name(g) for g in grids)
        raise Refused(t("coord.which_grid", lang, name=name, grids="、".join(names),
                        number=number, grid=names[0]))
    post, c = next((p, c) for p, c in found if p.grid_id in grids)
    return idx.grids_by_id[post.grid_id or 0], c


def _reachable_first(staff: list[tuple[directory.Post, directory.Contact]]
                     ) -> list[tuple[directory.Post, directory.Contact]]:
    """Someone who can be told comes before a namesake known only from the county files."""
    return sorted(staff, key=lambda pc: pc[1].chat_id is None)


def _manages(roles: list[StaffAssignment], grid: GridInfo) -> bool:
    return any(r.role == StaffRole.CENTRE
               or (r.role == StaffRole.COORDINATOR and r.community_id == grid.community_id)
               or (r.role == StaffRole.LEADER and r.grid_id == grid.id) for r in roles)
