"""Recording what a call found out, from the command line or a centre member's chat.

不满意 with the grid worker about a ticket sends the ticket back to work through the lifecycle
(the only writer of ticket state) and tells the grid leader; a ticket the lifecycle will not
reopen (already back at work, or one WeCom owns) is left as it is and the leader is told.
A number nobody answered is recorded as 未接通; the plan draws that household again next week.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks import texts as _texts  # noqa: F401  (registers the call-back texts)
from bot.callbacks.words import Result
from bot.deps import Deps
from bot.notify.tell import send_card, tell_staff
from bot.notify.texts import t
from bot.people import directory
from bot.reports.brief import mask_phones
from bot.tickets.lifecycle import SYSTEM, Actor, Refused, TransitionRefused, transition
from models.callbacks import REACHED, UNREACHED, CallbackCall
from models.enums import Satisfaction, StaffRole
from models.enums import TicketState as S
from models.tickets import Ticket

_REF = re.compile(r"(?P<week>\d{4}W\d{2})-(?P<seq>\d{1,4})|H(?P<household>\d{1,9})")


def said(call: CallbackCall, lang: str) -> str:
    def word(r: str) -> str:
        return t(f"rating.{r or 'none'}", lang)

    return t("callback.said", lang, community=word(call.community_rating),
             worker=word(call.worker_rating), committee=word(call.committee_rating))


async def find(s: AsyncSession, ref: str) -> CallbackCall | None:
    """By call number, or by household id (H123): that household's latest call."""
    m = _REF.fullmatch(ref.strip().upper())
    if m is None:
        return None
    q = select(CallbackCall).with_for_update()
    if m["household"]:
        return await s.scalar(q.where(CallbackCall.household_id == int(m["household"]))
                              .order_by(CallbackCall.week.desc()).limit(1))
    return await s.scalar(q.where(CallbackCall.number == f"{m['week']}-{int(m['seq']):03d}"))


async def record(s: AsyncSession, deps: Deps, result: Result, actor: Actor) -> str:
    """Store `result`; returns the answer for the person recording. Raises Refused."""
    lang = actor.lang
    call = await find(s, result.ref)
    if call is None:
        raise Refused(t("callback.not_found", lang, ref=result.ref))
    if call.outcome == REACHED:
        when = call.recorded_at.astimezone(deps.sla.tz) if call.recorded_at else None
        raise Refused(t("callback.already", lang, number=call.number, said=said(call, lang),
                        when=f"{when:%m-%d %H:%M}" if when else "—"))
    now = deps.clock()
    call.recorded_at, call.recorded_by, call.note = now, actor.name[:64], result.note
    if not result.reached:
        call.outcome = UNREACHED
        return t("callback.unreached", lang, number=call.number)
    call.outcome = REACHED
    call.community_rating = result.community
    call.worker_rating = result.worker
    call.committee_rating = result.committee
    answer = t("callback.saved", lang, number=call.number, said=said(call, lang))
    if result.worker == Satisfaction.UNSATISFIED and call.ticket_id is not None:
        answer += await _unsatisfied(s, deps, call, actor)
    return answer


async def _unsatisfied(s: AsyncSession, deps: Deps, call: CallbackCall, actor: Actor) -> str:
    ticket = await s.get(Ticket, call.ticket_id, with_for_update=True)
    if ticket is None:
        return ""
    note = mask_phones(call.note) or t("rating.unsatisfied", "")
    now = deps.clock()
    try:
        transition(s, ticket, S.REOPENED, actor, now=now, cfg=deps.sla,
                   note=f"回访 {call.number}：{note}")
    except TransitionRefused:
        await tell_staff(s, deps, StaffRole.LEADER, ticket, "leader.callback_follow_up",
                         note=note)
        return t("callback.told_leader", actor.lang, ticket=ticket.number,
                 state=t(f"state.{ticket.state}", actor.lang))
    transition(s, ticket, S.ASSIGNED, SYSTEM, now=now, cfg=deps.sla)
    await send_card(s, deps, ticket, "card.reopened", quiet=True)
    worker = await directory.contact(s, ticket.assignee_id, ticket.channel) \
        if ticket.assignee_id else None
    await tell_staff(s, deps, StaffRole.LEADER, ticket, "leader.callback_unsatisfied",
                     note=note, worker=worker.name if worker else "—")
    return t("callback.reopened", actor.lang, ticket=ticket.number)

