"""Carry out an action said in words (bot.tickets.words): find the ticket, then do what its
button does.

The same handlers as the buttons, in the caller's transaction, so the same rights and state
checks apply; a refusal changes nothing.
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.messages import Action, Inbound
from bot.notify.texts import t
from bot.people import directory
from bot.tickets import actions, coordinate, partners, queries
from bot.tickets import merge as merging
from bot.tickets.lifecycle import Refused, record
from bot.tickets.words import Said
from models.enums import ACTIVE, Category
from models.enums import TicketState as S
from models.tickets import Ticket

# which of a person's tickets a number-less phrase can mean
_WAITING = {
    "rate": ("reporter", {S.RESOLVED}),
    "ack": ("assignee", {S.ASSIGNED, S.REOPENED}),
    "progress": ("assignee", ACTIVE),
    "resolve": ("assignee", ACTIVE),
    "return": ("assignee", ACTIVE),
    "transfer": ("assignee", ACTIVE - {S.REOPENED}),
    "category": ("assignee", ACTIVE),
    "reject": ("none", set()),
    **{verb: ("none", set()) for verb in coordinate.VERBS | merging.VERBS},
    partners.HANDOVER: ("none", set()),
}


class NotMeant(Exception):
    """No number and nothing of theirs it could be about: the words were not a command."""


async def carry_out(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound, said: Said) -> str:
    """Returns the answer for the person; raises Refused (nothing changed) or NotMeant."""
    if said.verb == "overdue":
        if said.rest:  # 超时 3天了还没人来: a complaint, not the list
            raise NotMeant
        await queries.overdue_list(s, deps, ctx)
        return ""
    if said.verb in coordinate.VERBS | {partners.HANDOVER} and said.number is None:
        if not await directory.standing_roles(s, ctx.channel, ctx.user_id):
            raise NotMeant  # 备注 … from a resident is just words
        raise Refused(t(f"coord.{said.verb}_usage", ctx.lang))
    if said.verb in merging.VERBS:
        return await _merge_or_split(s, deps, ctx, said)
    ticket = await _ticket(s, deps, ctx, said)
    if said.verb in coordinate.VERBS:
        return await coordinate.carry_out(s, deps, ctx, ticket, said.verb, said.rest)
    if said.verb == partners.HANDOVER:
        return await partners.hand_over(s, deps, ctx, ticket, said.rest)
    if said.verb in partners.STEPS \
            and (done := await partners.step(s, deps, ctx, ib, ticket, said)) is not None:
        return done
    if said.verb == "rate":
        answer = await actions.act(s, deps, ctx, Action("rate", ticket.id, said.arg))
        if said.rest:
            actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
            record(s, ticket, actor, "note", now=deps.clock(), note=said.rest[:500])
        return answer
    if said.verb == "progress":
        if not said.rest and not ib.media:
            raise Refused(t("words.progress_usage", ctx.lang, number=ticket.number))
        done = await actions.progress_note(s, deps, ctx, ticket, said.rest, ib.media)
        if done is None:
            raise Refused(t("worker.not_allowed", ctx.lang))
        return done
    if said.verb == "resolve" and (said.rest or ib.media):
        return await actions.finish_resolve(s, deps, ctx, ticket, said.rest, ib.media)
    if said.verb == "return" and said.rest:
        return await actions.finish_return(s, deps, ctx, ticket, said.rest)
    if said.verb == "reject":
        if not said.rest:
            raise Refused(t("words.reject_usage", ctx.lang, number=ticket.number))
        return await actions.finish_reject(s, deps, ctx, ticket, said.rest)
    if said.verb == "transfer" and said.rest:
        code = _grid_code(deps, said.rest)
        if code is None:
            raise Refused(t("bind.unknown", ctx.lang, code=said.rest[:20]))
        return await actions.act(s, deps, ctx, Action("transfer_to", ticket.id, code))
    if said.verb == "category" and said.rest:
        cat = next((c for c in Category if said.rest.startswith(c.value)), None)
        if cat is None:
            raise Refused(t("words.category_usage", ctx.lang,
                            choices="、".join(c.value for c in Category)))
        return await actions.act(s, deps, ctx, Action("setcat", ticket.id, cat.name))
    # the question-asking step of the button: 办结 / 退回 / 转派 / 改类别 with nothing after
    op = {"resolve": "resolve", "return": "return", "transfer": "transfer",
          "category": "cat", "ack": "ack"}[said.verb]
    return await actions.act(s, deps, ctx, Action(op, ticket.id))


async def _merge_or_split(s: AsyncSession, deps: Deps, ctx: Ctx, said: Said) -> str:
    """合并 NUM 到 NUM / 拆分 NUM."""
    usage = t(f"coord.{said.verb}_usage", ctx.lang)
    number = rf"(?:{re.escape(deps.prefix)}-?)?(?:\d{{8}}-)?\d{{1,6}}"
    if said.number is None and said.verb == "merge":  # 合并 7到3: no space after the first
        pair = re.fullmatch(rf"({number})\s*(.+)", said.rest, re.I)
        if pair:
            said = Said(said.verb, pair[1].upper(), pair[2])
    if said.number is None:
        if not await directory.standing_roles(s, ctx.channel, ctx.user_id):
            raise NotMeant
        raise Refused(usage)
    if said.verb == "split":
        return await merging.split_off(s, deps, ctx, await _ticket(s, deps, ctx, said))
    target = merging.target_words(said.rest)
    if not re.fullmatch(number, target, re.I):
        raise Refused(usage)
    # both rows locked in id order: 合并 A 到 B and 合并 B 到 A at once must not deadlock
    found = [await _ticket(s, deps, ctx, said, lock=False),
             await _ticket(s, deps, ctx, Said(said.verb, target.upper(), ""), lock=False)]
    for tk in sorted(found, key=lambda tk: tk.id):
        await s.refresh(tk, with_for_update=True)
    return await merging.merge_into(s, deps, ctx, *found)


def _grid_code(deps: Deps, text: str) -> str | None:
    idx = deps.county.index
    word = text.split()[0].upper()
    if word in idx.grids:
        return word
    for code, g in idx.grids.items():
        if text.startswith(g.name) or f"{g.name}网格" == word:
            return code
    return None


async def _ticket(s: AsyncSession, deps: Deps, ctx: Ctx, said: Said, *, lock: bool = True
                  ) -> Ticket:
    person_id = await _person(s, ctx)
    whose, states = _WAITING[said.verb]
    mine = or_(Ticket.assignee_id == person_id if person_id is not None else False,
               (Ticket.channel == ctx.channel) & (Ticket.reporter_user_id == ctx.user_id),
               partners.handed_to(person_id))
    q = select(Ticket).with_for_update() if lock else select(Ticket)
    if said.number is None:
        if whose == "reporter":
            q = q.where(Ticket.channel == ctx.channel, Ticket.reporter_user_id == ctx.user_id)
        elif whose == "assignee" and person_id is not None:
            q = q.where(or_(Ticket.assignee_id == person_id, partners.handed_to(person_id)))
        else:
            raise NotMeant
        rows = (await s.scalars(q.where(Ticket.state.in_([x.value for x in states]))
                                .order_by(Ticket.id.desc()).limit(20))).all()
        if not rows and said.verb == "rate":  # a co-reporter (附议) rates what they follow
            rows = (await s.scalars(select(Ticket).where(Ticket.id.in_(
                select(Ticket.merged_into_id).where(
                    Ticket.channel == ctx.channel, Ticket.reporter_user_id == ctx.user_id,
                    Ticket.state == S.MERGED.value))).where(
                Ticket.state == S.RESOLVED.value).with_for_update())).all()
        if not rows:
            if said.verb == "rate" and not said.rest:  # a bare 满意: not a new problem
                raise Refused(t("rate.nothing_waiting", ctx.lang))
            raise NotMeant
        if len(rows) > 1:
            raise Refused(t("words.which", ctx.lang, n=len(rows),
                            example=rows[0].number))
        return rows[0]
    number = said.number
    bare = re.sub(rf"^{re.escape(deps.prefix)}-?", "", number, flags=re.I)
    if "-" in bare:  # 20261130-0007
        day, seq = bare.split("-", 1)
        found = await s.scalar(q.where(Ticket.number == f"{deps.prefix}-{day}-{int(seq):04d}"))
    else:
        # a bare sequence number: the person's own ticket ending in it, else today's
        found = await s.scalar(q.where(mine, Ticket.number.like(f"%-{int(bare):04d}"))
                               .order_by(Ticket.id.desc()).limit(1))
        if found is None:
            today = deps.clock().astimezone(deps.sla.tz).strftime("%Y%m%d")
            found = await s.scalar(q.where(
                Ticket.number == f"{deps.prefix}-{today}-{int(bare):04d}"))
    if found is None:
        raise Refused(t("status.not_found", ctx.lang, number=number))
    return found


async def _person(s: AsyncSession, ctx: Ctx) -> int | None:
    ident = await directory.identity(s, ctx.channel, ctx.user_id)
    return ident.person_id if ident else None
