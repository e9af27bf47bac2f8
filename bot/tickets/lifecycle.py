"""The one place where ticket state changes. Every change is checked and audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.notify.texts import t
from bot.tickets.sla import (
    NORMAL,
    URGENT,
    SlaConfig,
    ack_due,
    next_escalation,
    phase_due,
    priority_for,
    resolve_due,
)
from models.enums import ACTIVE, Channel, Role
from models.enums import TicketState as S
from models.tickets import NewTicket, Ticket, TicketEvent
from models.transitions import MANAGERS, allowed


@dataclass(frozen=True, slots=True)
class Actor:
    roles: frozenset[Role]
    person_id: int | None = None
    name: str = ""
    user_id: str | None = None
    channel: str | None = None
    lang: str = ""  # "" = the service's language (texts.use_language)

    def main_role(self) -> Role:
        for r in (Role.WORKER, Role.LEADER, Role.COORDINATOR, Role.CENTRE, Role.PARTNER,
                  Role.RESIDENT):
            if r in self.roles:
                return r
        return Role.SYSTEM


SYSTEM = Actor(roles=frozenset({Role.SYSTEM}), name="system")

# tickets whose state another system owns (WeCom 居民上报): only `mirror` moves them
MIRRORED = frozenset({Channel.WECOM_RESIDENT.value})
# the forward path a mirrored ticket follows, as the other system reports it
MIRROR_PATH = (S.ASSIGNED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.RESOLVED)


class Refused(Exception):
    """A polite no for the person who acted; its text is what they read. Nothing changed."""


class TransitionRefused(Refused):
    """The table or a stale card said no (`reason`: "stale" or "not allowed")."""

    def __init__(self, frm: S, to: S, reason: str, lang: str = "") -> None:
        super().__init__(t("worker.stale", lang, state=t(f"state.{frm.value}", lang))
                         if reason == "stale" else t("worker.not_allowed", lang))
        self.frm, self.to, self.reason = frm, to, reason


def _deadlines_on_enter(
    ticket: Ticket | NewTicket, to: S, frm: S | None, now: datetime, cfg: SlaConfig
) -> None:
    if to == S.REPORTED:
        ticket.route_due_at = now + timedelta(minutes=cfg.route_minutes)
    elif to == S.ASSIGNED:
        ticket.assigned_at = now
        ticket.route_due_at = None
        ticket.ack_due_at = ack_due(now, ticket.priority, cfg)
        if ticket.resolve_due_at is None or frm == S.REOPENED:
            ticket.resolve_due_at = resolve_due(now, ticket.priority, cfg)
    elif to == S.ACKNOWLEDGED:
        ticket.acknowledged_at = now
    elif to == S.RESOLVED:
        ticket.resolved_at = now
        ticket.confirm_due_at = now + timedelta(days=cfg.confirm_days)
    elif to == S.CLOSED:
        ticket.closed_at = now
    refresh_escalation(ticket, cfg)


def refresh_escalation(ticket: Ticket | NewTicket, cfg: SlaConfig) -> None:
    state = S(ticket.state)
    due = phase_due(
        state, ticket.route_due_at, ticket.ack_due_at, ticket.resolve_due_at, ticket.confirm_due_at
    )
    if state == S.REPORTED and ticket.unrouted:
        due = None
    ticket.escalation_at = next_escalation(
        due, state, ticket.escalation_level, ticket.last_escalated_at, cfg
    )


def _event(ticket: Ticket, actor: Actor, kind: str, now: datetime, **kw: Any) -> TicketEvent:
    return TicketEvent(
        ticket_id=ticket.id,
        at=now,
        kind=kind,
        actor_role=actor.main_role().value,
        actor_person_id=actor.person_id,
        actor_name=actor.name,
        **kw,
    )


def transition(
    session: AsyncSession,
    ticket: Ticket,
    to: S,
    actor: Actor,
    *,
    now: datetime,
    cfg: SlaConfig,
    note: str = "",
    expect: S | set[S] | None = None,
) -> TicketEvent:
    """Move `ticket` to `to` if the table allows it for `actor`; write the audit event.

    `expect` guards against acting on a card that is out of date (a second tap, a race).
    """
    frm = S(ticket.state)
    if expect is not None and frm not in ({expect} if isinstance(expect, S) else expect):
        raise TransitionRefused(frm, to, "stale", actor.lang)
    if ticket.channel in MIRRORED or not allowed(frm, to, actor.roles):
        raise TransitionRefused(frm, to, "not allowed", actor.lang)
    ticket.state = to.value
    ticket.updated_at = now
    if to == S.RETURNED:
        ticket.assignee_id = None  # "not mine": nobody has it until it is assigned again
    _deadlines_on_enter(ticket, to, frm, now, cfg)
    ev = _event(ticket, actor, "transition", now, from_state=frm.value, to_state=to.value,
                note=note)
    session.add(ev)
    return ev


def place(
    session: AsyncSession,
    ticket: Ticket,
    *,
    grid_id: int,
    community_id: int,
    assignee_id: int | None,
    actor: Actor,
    now: datetime,
    cfg: SlaConfig,
    note: str = "",
) -> TicketEvent:
    """Route (or re-route) a ticket to a grid and its worker: placement and state in one step."""
    if ticket.channel in MIRRORED:
        raise TransitionRefused(S(ticket.state), S.ASSIGNED, "not allowed", actor.lang)
    ticket.grid_id = grid_id
    ticket.community_id = community_id
    ticket.assignee_id = assignee_id
    ticket.unrouted = False
    ticket.route_status = "routed"
    return transition(session, ticket, S.ASSIGNED, actor, now=now, cfg=cfg, note=note)


def to_queue(session: AsyncSession, ticket: Ticket, *, now: datetime, cfg: SlaConfig,
             note: str = "") -> TicketEvent:
    """No grid in time: into the community's unrouted queue, where no deadline runs."""
    ticket.unrouted = True
    refresh_escalation(ticket, cfg)
    return record(session, ticket, SYSTEM, "queued", now=now, note=note)


def record(
    session: AsyncSession, ticket: Ticket, actor: Actor, kind: str, *, now: datetime, note: str = ""
) -> TicketEvent:
    """An audited event that does not change state (progress note, category, escalation)."""
    ticket.updated_at = now
    ev = _event(ticket, actor, kind, now, note=note)
    session.add(ev)
    return ev


def set_priority(session: AsyncSession, ticket: Ticket, priority: str, actor: Actor, *,
                 now: datetime, cfg: SlaConfig) -> TicketEvent:
    """优先: a manager makes a ticket urgent or normal; its running deadlines restart from now.

    A deadline already met stays as it was (the acknowledgement of an acknowledged ticket),
    so the rates still judge that step by the time it had.
    """
    if priority not in (URGENT, NORMAL) or priority == ticket.priority \
            or not actor.roles & MANAGERS or ticket.channel in MIRRORED:
        raise Refused(t("worker.not_allowed", actor.lang))
    state = S(ticket.state)
    if state not in ACTIVE | {S.REPORTED, S.RETURNED}:
        raise Refused(t("worker.stale", actor.lang, state=t(f"state.{state.value}", actor.lang)))
    before = ticket.priority
    ticket.priority = priority
    if state in (S.ASSIGNED, S.REOPENED):
        ticket.ack_due_at = ack_due(now, priority, cfg)
    if state in ACTIVE:
        ticket.resolve_due_at = resolve_due(now, priority, cfg)
    refresh_escalation(ticket, cfg)
    return record(session, ticket, actor, "priority", now=now, note=f"{before} → {priority}")


def hold_escalation(ticket: Ticket, until: datetime) -> None:
    """Quiet hours: the sweeper looks at this ticket again at `until`, not before."""
    ticket.escalation_at = until


def repeat(ticket_id: int, reporter_name: str, now: datetime, text: str,
           kind: str = "repeat") -> dict[str, Any]:
    """The event of a report added to an earlier ticket: a "+1" of the same person (repeat),
    or another resident's report of the same problem (co_report)."""
    return dict(ticket_id=ticket_id, at=now, kind=kind, from_state=None, to_state=None,
                actor_role=Role.RESIDENT.value, actor_person_id=None, actor_name=reporter_name,
                note=text[:200])


def escalate(ticket: Ticket, now: datetime, cfg: SlaConfig) -> int:
    """Climb one rung (kept across reopen); returns the new level."""
    ticket.escalation_level = min(ticket.escalation_level + 1, 3)
    ticket.last_escalated_at = now
    refresh_escalation(ticket, cfg)
    return ticket.escalation_level


def opening(ticket: NewTicket, routed: bool, now: datetime, cfg: SlaConfig, *,
            held: str = "", assignee_id: int | None = None) -> list[dict[str, Any]]:
    """State, deadlines and first events of a new ticket (bulk intake writes these rows).

    `held` (a reason) puts it straight into the community's unrouted queue, with no deadline.
    Returns event value dicts (ticket_id filled in by the caller after insert).
    """
    ticket.state = S.REPORTED.value
    ticket.created_at = ticket.updated_at = now
    if priority_for(ticket.category, cfg) == URGENT:
        ticket.priority = URGENT
    ticket.unrouted = bool(held)
    ticket.assignee_id = assignee_id if routed else None
    _deadlines_on_enter(ticket, S.REPORTED, None, now, cfg)
    events = [
        dict(at=now, kind="transition", from_state=None, to_state=S.REPORTED.value,
             actor_role=Role.RESIDENT.value, actor_person_id=None,
             actor_name=ticket.reporter_name, note="")
    ]
    if held:
        events.append(dict(at=now, kind="held", from_state=None, to_state=None,
                           actor_role=Role.SYSTEM.value, actor_person_id=None,
                           actor_name="system", note=held))
        return events
    if routed:
        if not allowed(S.REPORTED, S.ASSIGNED, {Role.SYSTEM}):
            raise TransitionRefused(S.REPORTED, S.ASSIGNED, "routing may not assign")
        ticket.state = S.ASSIGNED.value
        _deadlines_on_enter(ticket, S.ASSIGNED, S.REPORTED, now, cfg)
        events.append(
            dict(at=now, kind="transition", from_state=S.REPORTED.value,
                 to_state=S.ASSIGNED.value, actor_role=Role.SYSTEM.value, actor_person_id=None,
                 actor_name="system", note="")
        )
    return events


def co_report(ticket: NewTicket, parent_id: int, parent_number: str, now: datetime
              ) -> list[dict[str, Any]]:
    """A new report that follows an open ticket (附议): merged into it from the start, with no
    worker, no card and no deadline of its own. Returns its event value dicts."""
    if not allowed(S.REPORTED, S.MERGED, {Role.SYSTEM}):
        raise TransitionRefused(S.REPORTED, S.MERGED, "intake may not link")
    ticket.state = S.MERGED.value
    ticket.created_at = ticket.updated_at = now
    ticket.merged_into_id = parent_id
    ticket.assignee_id = None
    ticket.unrouted = False
    ticket.escalation_at = None
    return [
        dict(at=now, kind="transition", from_state=None, to_state=S.REPORTED.value,
             actor_role=Role.RESIDENT.value, actor_person_id=None,
             actor_name=ticket.reporter_name, note=""),
        dict(at=now, kind="transition", from_state=S.REPORTED.value, to_state=S.MERGED.value,
             actor_role=Role.SYSTEM.value, actor_person_id=None, actor_name="system",
             note=parent_number),
    ]


def merge(session: AsyncSession, ticket: Ticket, into: Ticket, actor: Actor, *,
          now: datetime, cfg: SlaConfig, followers: list[Ticket]) -> TicketEvent:
    """合并: `ticket` follows `into` from now on, and so do its own `followers`; its deadlines
    stop. Only open tickets that follow nothing are merged, into another such ticket."""
    if ticket.channel in MIRRORED or into.channel in MIRRORED or ticket.id == into.id \
            or into.merged_into_id is not None or S(into.state) == S.MERGED:
        raise TransitionRefused(S(ticket.state), S.MERGED, "not allowed", actor.lang)
    ev = transition(session, ticket, S.MERGED, actor, now=now, cfg=cfg, note=into.number)
    ticket.merged_into_id = into.id
    for tk in followers:
        tk.merged_into_id = into.id
        tk.updated_at = now
        session.add(_event(tk, actor, "moved", now, note=f"{ticket.number} → {into.number}"))
    return ev


def split(session: AsyncSession, ticket: Ticket, actor: Actor, *, now: datetime,
          cfg: SlaConfig, note: str = "") -> TicketEvent:
    """拆分: a co-report becomes a ticket of its own again, back at routing (REPORTED)."""
    ev = transition(session, ticket, S.REPORTED, actor, now=now, cfg=cfg, expect=S.MERGED,
                    note=note)
    ticket.merged_into_id = None
    return ev


def rate_co_report(session: AsyncSession, ticket: Ticket, parent: Ticket, verdict: str,
                   actor: Actor, *, now: datetime) -> TicketEvent:
    """A co-reporter's verdict on the work done on `parent`, kept on their own co-report."""
    ticket.satisfaction = verdict
    ticket.closed_at = now  # when they rated: a later resolution of the parent asks again
    record(session, parent, actor, "co_rating", now=now, note=f"{ticket.number} {verdict}")
    return record(session, ticket, actor, "rating", now=now, note=verdict)


def mirror(ticket: Ticket | NewTicket, to: S, *, actor_role: Role, actor_name: str,
           now: datetime, cfg: SlaConfig, note: str = "",
           actor_person_id: int | None = None) -> list[dict[str, Any]]:
    """Follow another system's word on a mirrored ticket, forward along MIRROR_PATH only.

    Each state passed through gets its deadlines and its event (value dicts; ticket_id is
    filled in by the caller). A resolved mirrored ticket has no confirmation deadline: the
    other system closes it, not our sweeper.
    """
    frm = S(ticket.state)
    if frm not in MIRROR_PATH or to not in MIRROR_PATH \
            or MIRROR_PATH.index(to) <= MIRROR_PATH.index(frm):
        return []
    events: list[dict[str, Any]] = []
    for step in MIRROR_PATH[MIRROR_PATH.index(frm) + 1:MIRROR_PATH.index(to) + 1]:
        before = S(ticket.state)
        ticket.state = step.value
        ticket.updated_at = now
        _deadlines_on_enter(ticket, step, before, now, cfg)
        if step == S.RESOLVED:
            ticket.confirm_due_at = None
            refresh_escalation(ticket, cfg)
        events.append(dict(at=now, kind="transition", from_state=before.value,
                           to_state=step.value, actor_role=actor_role.value,
                           actor_person_id=actor_person_id, actor_name=actor_name[:128],
                           note=note[:200]))
    return events
