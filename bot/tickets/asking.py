"""Guards and questions shared by every ticket action: refusals, state checks, pending answers."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.messages import Action, Button
from bot.notify.texts import t
from bot.sqlutil import insert_for
from bot.tickets.lifecycle import Actor, Refused
from models.enums import TicketState as S
from models.tickets import PendingInput, Ticket
from models.transitions import TRANSITIONS, allowed

INPUT_MINUTES = 30



def check(ticket: Ticket, to: S, actor: Actor, expect: AbstractSet[S]) -> None:
    # who may ever do this comes first, so a stranger learns nothing about the ticket's state
    if not any(target == to and roles & actor.roles for (_f, target), roles in TRANSITIONS.items()):
        raise Refused(t("worker.not_allowed", actor.lang))
    state = S(ticket.state)
    if state not in expect:
        raise Refused(t("worker.stale", actor.lang, state=t(f"state.{state.value}", actor.lang)))
    if not allowed(state, to, actor.roles):
        raise Refused(t("worker.not_allowed", actor.lang))


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


def cancel_button(ticket_id: int, lang: str) -> list[list[Button]]:
    return [[Button(t("btn.cancel", lang), Action("cancel", ticket_id))]]
