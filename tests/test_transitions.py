"""The transition table and the lifecycle that enforces it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.tickets.lifecycle import SYSTEM, Actor, TransitionRefused, escalate, opening, transition
from bot.tickets.sla import SlaConfig
from models.enums import OPEN_STATES, Role
from models.enums import TicketState as S
from models.tickets import Ticket, TicketEvent
from models.transitions import TRANSITIONS, allowed

CFG = SlaConfig(tz=ZoneInfo("Asia/Shanghai"))
NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


class FakeSession:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)


def actor(*roles: Role) -> Actor:
    return Actor(roles=frozenset(roles), person_id=7, name="王建军")


def ticket(state: S) -> Ticket:
    t = Ticket(number="FS-20261124-0001", state=state.value, category="其他", text="x",
               route_status="routed", channel="telegram", chat_id="1", chat_kind="group",
               reporter_user_id="9", escalation_level=0, unrouted=False)
    t.id = 1
    return t


def test_every_state_is_reachable_and_closed_is_final_but_for_a_call_back() -> None:
    targets = {to for (_frm, to) in TRANSITIONS}
    assert set(S) - {S.REPORTED} <= targets
    assert [k for k in TRANSITIONS if k[0] in (S.CLOSED, S.REJECTED)] == [(S.CLOSED, S.REOPENED)]
    assert allowed(S.CLOSED, S.REOPENED, {Role.CENTRE})
    assert not allowed(S.CLOSED, S.REOPENED, {Role.RESIDENT, Role.COORDINATOR, Role.LEADER})


def test_open_states_can_all_leave() -> None:
    sources = {frm for (frm, _to) in TRANSITIONS}
    assert sources >= OPEN_STATES


@pytest.mark.parametrize(
    ("frm", "to", "role", "ok"),
    [
        (S.ASSIGNED, S.ACKNOWLEDGED, Role.WORKER, True),
        (S.ASSIGNED, S.ACKNOWLEDGED, Role.RESIDENT, False),
        (S.ASSIGNED, S.ACKNOWLEDGED, Role.COORDINATOR, False),
        (S.RESOLVED, S.CLOSED, Role.RESIDENT, True),
        (S.RESOLVED, S.CLOSED, Role.WORKER, False),
        (S.RESOLVED, S.REOPENED, Role.RESIDENT, True),
        (S.IN_PROGRESS, S.RESOLVED, Role.WORKER, True),
        (S.IN_PROGRESS, S.RESOLVED, Role.RESIDENT, False),
        (S.RETURNED, S.ASSIGNED, Role.COORDINATOR, True),
        (S.RETURNED, S.ASSIGNED, Role.WORKER, False),
        (S.CLOSED, S.REOPENED, Role.RESIDENT, False),
        (S.REPORTED, S.ASSIGNED, Role.SYSTEM, True),
    ],
)
def test_table(frm: S, to: S, role: Role, ok: bool) -> None:
    assert allowed(frm, to, {role}) is ok


def test_transition_writes_event_and_deadlines() -> None:
    s = FakeSession()
    t = ticket(S.ASSIGNED)
    ev = transition(s, t, S.ACKNOWLEDGED, actor(Role.WORKER), now=NOW, cfg=CFG,  # type: ignore[arg-type]
                    note="on my way")
    assert t.state == S.ACKNOWLEDGED and t.acknowledged_at == NOW
    assert isinstance(ev, TicketEvent) and ev in s.added
    assert (ev.from_state, ev.to_state, ev.actor_role, ev.note) == (
        "assigned", "acknowledged", "worker", "on my way")


def test_refused_transition_changes_nothing() -> None:
    s = FakeSession()
    t = ticket(S.ASSIGNED)
    with pytest.raises(TransitionRefused):
        transition(s, t, S.CLOSED, actor(Role.RESIDENT), now=NOW, cfg=CFG)  # type: ignore[arg-type]
    with pytest.raises(TransitionRefused):
        transition(s, t, S.ACKNOWLEDGED, actor(Role.WORKER), now=NOW, cfg=CFG,  # type: ignore[arg-type]
                   expect=S.REOPENED)
    assert t.state == S.ASSIGNED and s.added == []


def test_opening_routed_assigns_with_deadlines() -> None:
    t = ticket(S.REPORTED)
    events = opening(t, routed=True, now=NOW, cfg=CFG)
    assert t.state == S.ASSIGNED
    assert [e["to_state"] for e in events] == ["reported", "assigned"]
    assert t.ack_due_at is not None and t.ack_due_at > NOW
    assert t.resolve_due_at is not None and t.resolve_due_at > t.ack_due_at
    assert t.escalation_at == t.ack_due_at


def test_opening_unrouted_waits_for_an_answer() -> None:
    t = ticket(S.REPORTED)
    opening(t, routed=False, now=NOW, cfg=CFG)
    assert t.state == S.REPORTED and t.ack_due_at is None
    assert t.escalation_at == t.route_due_at


def test_escalation_climbs_and_stops_at_the_centre() -> None:
    t = ticket(S.ASSIGNED)
    opening(t, routed=True, now=NOW, cfg=CFG)
    due = t.ack_due_at
    assert due is not None
    levels = []
    when = due
    for _ in range(5):
        levels.append(escalate(t, when, CFG))
        if t.escalation_at is None:
            break
        when = t.escalation_at
    assert levels == [1, 2, 3]
    assert t.escalation_at is None


def test_reopen_keeps_escalation_level() -> None:
    s = FakeSession()
    t = ticket(S.RESOLVED)
    t.escalation_level = 2
    transition(s, t, S.REOPENED, actor(Role.RESIDENT), now=NOW, cfg=CFG)  # type: ignore[arg-type]
    transition(s, t, S.ASSIGNED, SYSTEM, now=NOW, cfg=CFG)  # type: ignore[arg-type]
    assert t.escalation_level == 2 and t.state == S.ASSIGNED
