"""Acts on deadlines: unrouted queue, escalation ladder, auto-close. Reads an index only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

from sqlalchemy import CursorResult, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Deps
from bot.notify import digest, tell
from bot.notify.compose import local
from bot.tickets import assign
from bot.tickets.lifecycle import (
    SYSTEM,
    escalate,
    hold_escalation,
    record,
    refresh_escalation,
    transition,
)
from bot.tickets.sla import URGENT, quiet_until
from models.enums import ACTIVE, OutboxStatus
from models.enums import TicketState as S
from models.tickets import Outbox, Ticket

log = logging.getLogger(__name__)


async def sweep_once(deps: Deps, limit: int = 100) -> int:
    now = deps.clock()
    async with deps.sm() as s, s.begin():
        q = (select(Ticket).where(Ticket.escalation_at <= now)
             .order_by(Ticket.escalation_at).limit(limit))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        due = list((await s.scalars(q)).all())
        for ticket in due:
            await _act(s, deps, ticket)
    if due:
        deps.wake_outbox()
    return len(due)


async def _act(s: AsyncSession, deps: Deps, ticket: Ticket) -> None:
    now = deps.clock()
    state = S(ticket.state)
    if state == S.REPORTED:
        await assign.to_unrouted(s, deps, ticket)
        return
    if state == S.RESOLVED:
        transition(s, ticket, S.CLOSED, SYSTEM, now=now, cfg=deps.sla, note="no rating")
        await tell.tell_resident(s, ticket, "resident.auto_closed")
        return
    if state not in ACTIVE:
        refresh_escalation(ticket, deps.sla)  # nothing is due in this state any more
        return
    quiet = quiet_until(now, deps.sla) if ticket.priority != URGENT else None
    if quiet is not None:
        hold_escalation(ticket, quiet)  # staff are not woken for it: the morning will do
        return
    ack_phase = state in (S.ASSIGNED, S.REOPENED)
    due = ticket.ack_due_at if ack_phase else ticket.resolve_due_at
    level = escalate(ticket, now, deps.sla)
    record(s, ticket, SYSTEM, "escalate", now=now, note=f"level {level}")
    key = "escalate.ack" if ack_phase else "escalate.resolve"
    grid = deps.county.index.grid_name(ticket.grid_id)
    sent = await tell.tell_up(s, deps, ticket, key, tell.LADDER[level - 1], grid=grid,
                              due=local(due, deps.sla.tz))
    if not sent:
        log.warning("escalation of %s reached nobody", ticket.number)
    refresh_escalation(ticket, deps.sla)


async def release_held(deps: Deps) -> int:
    """Staff notices kept back for the quiet hours go out once they are over. Most ticks
    find none: a read first, so the write lock is taken only when there is work."""
    now = deps.clock()
    due = and_(Outbox.status == OutboxStatus.HELD.value, Outbox.next_attempt_at <= now)
    async with deps.reader()() as s:
        if await s.scalar(select(Outbox.id).where(due).limit(1)) is None:
            return 0
    async with deps.sm() as s, s.begin():
        done = await s.execute(update(Outbox).where(due).values(
            status=OutboxStatus.PENDING.value, next_attempt_at=now))
    deps.wake_outbox()
    return int(cast(CursorResult[Any], done).rowcount or 0)


async def run_sweeper(deps: Deps, stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        try:
            for _ in range(50):  # bounded: a backlog drains over a few ticks, never spins
                if await sweep_once(deps) == 0:
                    break
            await release_held(deps)
        except Exception:
            log.exception("sweep failed; will retry")
        try:
            await digest.send_if_due(deps)
        except Exception:
            log.exception("daily digest failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
