"""Priority-aware deadlines: urgent tickets run on the clock with their own times, normal ones
on working time (holidays included); one rung per breach; quiet hours hold normal escalations."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bot.tickets import sweeper
from bot.tickets.lifecycle import opening
from bot.tickets.sla import NORMAL, URGENT, SlaConfig, parse_quiet_hours, quiet_until
from models.enums import StaffRole
from models.enums import TicketState as S
from models.tickets import NewTicket
from tests.conftest import SHANGHAI
from tests.test_telegram_flow import CENTRE, COORD, LEADER, Flow, events, invite, report, ticket
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

CFG = SlaConfig(tz=SHANGHAI)
HAZARD = "报事 南关农贸市场门口电线裸露，有触电危险"
LADDER = {1: LEADER, 2: COORD, 3: CENTRE}


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(UTC)


def new_ticket(category: str = "其他") -> NewTicket:
    return NewTicket(number="FS-20260930-0001", category=category, text="x",
                     route_status="routed", channel="telegram", chat_id="1", chat_kind="group",
                     reporter_user_id="9")


@pytest.fixture
async def ladder(staffed: Flow) -> Flow:
    code = await invite(staffed.tg, StaffRole.CENTRE)
    await staffed.say(CENTRE, f"/start {code}")
    await staffed.deliver()
    staffed.clear()
    return staffed


async def sweep(flow: Flow) -> None:
    await sweeper.sweep_once(flow.tg.app.deps)
    await flow.deliver()


def warned(flow: Flow, user: int, number: str) -> int:
    return sum(1 for x in flow.texts(user) if x.startswith("【超时未接单】") and number in x)


# ------------------------------------------------------------------------- the calendar

def test_a_normal_deadline_over_national_day_2026_lands_on_the_right_working_day() -> None:
    tk = new_ticket()
    opening(tk, True, sh(2026, 9, 30, 17, 0), CFG)  # the Wednesday before the holiday
    assert tk.priority == NORMAL
    # one working hour on the 30th, the other after the holiday (1-7 October)
    assert tk.ack_due_at == sh(2026, 10, 8, 9, 0)
    # 3 working days: the 8th, the 9th, and Saturday the 10th (a worked make-up day)
    assert tk.resolve_due_at == sh(2026, 10, 10, 18, 0)


def test_an_urgent_deadline_runs_through_the_holiday() -> None:
    tk = new_ticket("安全隐患")
    opening(tk, True, sh(2026, 9, 30, 17, 0), CFG)
    assert tk.priority == URGENT
    assert tk.ack_due_at == sh(2026, 9, 30, 17, 30)
    assert tk.resolve_due_at == sh(2026, 10, 1, 17, 0)
    assert tk.escalation_at == tk.ack_due_at


def test_urgent_times_and_categories_come_from_the_configuration() -> None:
    cfg = SlaConfig(tz=SHANGHAI, ack_hours_urgent=1, resolve_hours_urgent=8,
                    urgent_categories=frozenset({"市政设施"}))
    hazard, works = new_ticket("安全隐患"), new_ticket("市政设施")
    opening(hazard, True, sh(2026, 3, 3, 10, 0), cfg)
    opening(works, True, sh(2026, 3, 3, 10, 0), cfg)
    assert hazard.priority == NORMAL and hazard.ack_due_at == sh(2026, 3, 3, 12, 0)
    assert works.priority == URGENT and works.ack_due_at == sh(2026, 3, 3, 11, 0)
    assert works.resolve_due_at == sh(2026, 3, 3, 18, 0)


@pytest.mark.parametrize(("at", "until"), [
    ((2026, 3, 3, 21, 59), None),
    ((2026, 3, 3, 22, 0), (2026, 3, 4, 7, 0)),
    ((2026, 3, 4, 3, 0), (2026, 3, 4, 7, 0)),
    ((2026, 3, 4, 7, 0), None),
])
def test_quiet_hours_end_in_the_morning(at: tuple[int, ...], until: tuple[int, ...] | None
                                        ) -> None:
    cfg = SlaConfig(tz=SHANGHAI, quiet_start=22, quiet_end=7)
    assert quiet_until(sh(*at), cfg) == (sh(*until) if until else None)
    assert quiet_until(sh(*at), CFG) is None  # none configured


def test_quiet_hours_setting() -> None:
    assert parse_quiet_hours("22-7") == (22, 7)
    assert parse_quiet_hours("off") == (0, 0)
    with pytest.raises(ValueError, match="QUIET_HOURS"):
        parse_quiet_hours("22")


# ------------------------------------------------------------------------- the ladder

@pytest.mark.parametrize(("text", "due"), [
    ("报事 南关农贸市场门口垃圾堆了三天没人清运", timedelta(hours=2)),
    (HAZARD, timedelta(minutes=30)),
], ids=["normal", "urgent"])
async def test_each_breach_climbs_exactly_one_rung(ladder: Flow, text: str, due: timedelta
                                                   ) -> None:
    flow = ladder
    tk = await report(flow, text)
    assert tk.ack_due_at == tk.created_at + due  # 10:00 on a Tuesday: working time either way
    flow.tg.clock.now = tk.ack_due_at - timedelta(seconds=1)
    await sweep(flow)
    assert (await ticket(flow.tg)).escalation_level == 0
    for level in (1, 2, 3):
        flow.tg.clock.now = (await ticket(flow.tg)).escalation_at  # type: ignore[assignment]
        await sweep(flow)
        await sweep(flow)  # sweeping again at once climbs nothing more
        now = await ticket(flow.tg)
        assert now.escalation_level == level
        assert warned(flow, LADDER[level], tk.number) == 1
        assert [e.note for e in await events(flow.tg, tk.id) if e.kind == "escalate"] \
            == [f"level {n}" for n in range(1, level + 1)]
    assert (await ticket(flow.tg)).escalation_at is None  # the top: nothing left to climb
    assert (await ticket(flow.tg)).state == S.ASSIGNED


# ------------------------------------------------------------------------- quiet hours

def quiet(flow: Flow) -> None:
    deps = flow.tg.app.deps
    deps.sla = dataclasses.replace(deps.sla, quiet_start=22, quiet_end=7)


async def test_quiet_hours_hold_a_normal_escalation_until_morning(ladder: Flow) -> None:
    flow = ladder
    quiet(flow)
    tk = await report(flow)
    flow.tg.clock.now = tk.ack_due_at  # type: ignore[assignment]
    await sweep(flow)
    assert warned(flow, LEADER, tk.number) == 1  # 12:00: the leader is told
    flow.tg.clock.now = sh(2026, 3, 3, 23, 0)  # the next rung fell due at 16:00; it is night
    await sweep(flow)
    held = await ticket(flow.tg)
    assert held.escalation_level == 1 and held.escalation_at == sh(2026, 3, 4, 7, 0)
    assert warned(flow, COORD, tk.number) == 0
    flow.tg.clock.now = sh(2026, 3, 4, 7, 0)
    await sweep(flow)
    assert (await ticket(flow.tg)).escalation_level == 2
    assert warned(flow, COORD, tk.number) == 1


async def test_quiet_hours_do_not_hold_an_urgent_escalation(ladder: Flow) -> None:
    flow = ladder
    quiet(flow)
    flow.tg.clock.now = sh(2026, 3, 3, 23, 0)
    tk = await report(flow, HAZARD)
    assert tk.priority == URGENT and tk.ack_due_at == sh(2026, 3, 3, 23, 30)
    flow.tg.clock.now = sh(2026, 3, 3, 23, 31)
    await sweep(flow)
    assert (await ticket(flow.tg)).escalation_level == 1
    assert warned(flow, LEADER, tk.number) == 1
