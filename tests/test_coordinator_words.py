"""A coordinator's words: 超时, 改派, 优先, 备注 — allowed in scope, refused with a reason (and
nothing changed) outside it, each change audited as a ticket event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from models.enums import StaffRole
from models.enums import TicketState as S
from models.tickets import Ticket
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    LEADER,
    RESIDENT,
    WORKER,
    WORKER3,
    Flow,
    events,
    invite,
    report,
    ticket,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

OTHER_COORD = 530  # 西城 (XC)'s coordinator: not 府南's
COLUMNS = ("state", "grid_id", "community_id", "assignee_id", "priority", "ack_due_at",
           "resolve_due_at", "escalation_at", "escalation_level")


@pytest.fixture
async def crew(staffed: Flow) -> Flow:
    for user, role, community in ((OTHER_COORD, StaffRole.COORDINATOR, "XC"),
                                  (CENTRE, StaffRole.CENTRE, None)):
        code = await invite(staffed.tg, role, community=community)
        await staffed.say(user, f"/start {code}")
    await staffed.deliver()
    staffed.clear()
    return staffed


def snapshot(tk: Ticket) -> dict[str, Any]:
    return {c: getattr(tk, c) for c in COLUMNS}


async def say(flow: Flow, user: int, text: str) -> str:
    await flow.say(user, text)
    await flow.deliver()
    return flow.texts(user)[-1]


async def refused(flow: Flow, user: int, text: str, tk: Ticket) -> str:
    """Say `text`; assert the ticket and its events did not change; return the answer."""
    before, n = snapshot(await ticket(flow.tg, tk.number)), len(await events(flow.tg, tk.id))
    answer = await say(flow, user, text)
    assert snapshot(await ticket(flow.tg, tk.number)) == before
    assert len(await events(flow.tg, tk.id)) == n
    return answer


# ---------------------------------------------------------------------------------- 超时

async def test_overdue_lists_tickets_past_their_deadline_in_scope(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    assert await say(flow, COORD, "超时") == "没有超时工单。"
    flow.tg.clock.advance(hours=2, minutes=5)  # 10:00 + 2 working hours: not acknowledged
    listed = await say(flow, COORD, "超时")
    assert listed.startswith("超时工单共 1 张")
    assert f"{tk.number}｜南关网格｜未接单，时限" in listed
    assert tk.number in await say(flow, LEADER, "超时工单")  # the grid's leader
    assert tk.number in await say(flow, CENTRE, "超时")  # the centre, anywhere
    assert await say(flow, OTHER_COORD, "超时") == "没有超时工单。"  # another community's
    await flow.say(COORD, "超时", chat=GROUP)  # everyone there reads it: no complaints shown
    await flow.deliver()
    assert flow.texts(GROUP)[-1].endswith(f"{tk.number}｜南关网格｜未接单，时限 03-03 12:00\n"
                                          "可回复：改派 工单号 网格或姓名；优先 工单号 紧急；"
                                          "备注 工单号 内容")
    answer = await say(flow, WORKER3, "超时")
    assert answer == "超时工单由社区工作人员、网格长和县指挥中心查看。"


async def test_a_complaint_starting_with_overdue_is_not_the_list(crew: Flow) -> None:
    flow = crew
    tk = await report(flow, "报事 南关农贸市场门口路灯坏了")
    await flow.say(RESIDENT, "超时 3天了还没人来 南关农贸市场门口", chat=GROUP)
    await flow.deliver()
    assert not any("超时工单" in x for x in flow.texts(GROUP))
    assert (await ticket(flow.tg, tk.number)).state == S.ASSIGNED


# ---------------------------------------------------------------------------------- 改派

async def test_reassign_to_another_grid_of_the_community(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    await say(flow, WORKER, f"接单 {tk.number}")
    at = flow.tg.clock()
    answer = await say(flow, COORD, f"改派 {tk.number} 社岭网格")
    assert answer == f"已改派：{tk.number} → 社岭网格韩冬。"
    moved = await ticket(flow.tg, tk.number)
    idx = flow.tg.app.deps.county.index
    assert idx.grid_name(moved.grid_id) == "社岭" and moved.state == S.ASSIGNED
    assert moved.ack_due_at == at + timedelta(hours=2)  # a fresh time to ack
    assert flow.texts(WORKER3)[-1].startswith(f"【改派工单】{tk.number}")
    assert flow.texts(WORKER)[-1] == f"工单 {tk.number} 已改派给社岭网格韩冬，您不用再处理了。"
    assert any(f"工单 {tk.number} 已转由社岭网格处理。" in x for x in flow.texts(GROUP))
    ev = (await events(flow.tg, tk.id))[-1]
    assert (ev.kind, ev.from_state, ev.to_state, ev.actor_role, ev.actor_name) == (
        "transition", S.ACKNOWLEDGED, S.ASSIGNED, "coordinator", "周主任")
    assert ev.note == "改派：南关 → 社岭韩冬"


async def test_reassign_to_a_named_worker(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    answer = await say(flow, COORD, f"改派 {tk.number} 韩冬")
    assert answer == f"已改派：{tk.number} → 社岭网格韩冬。"
    assert flow.texts(WORKER3)[-1].startswith(f"【改派工单】{tk.number}")
    answer = await refused(flow, COORD, f"改派 {tk.number} 社岭 韩冬", tk)
    assert answer == f"工单 {tk.number} 已经在社岭网格韩冬手上，未作改动。"
    answer = await refused(flow, COORD, f"改派 {tk.number} 无名氏", tk)
    assert answer.startswith("没有找到“无名氏”这个网格或网格员")


async def test_reassign_refused_out_of_scope(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    answer = await refused(flow, OTHER_COORD, f"改派 {tk.number} 西关网格", tk)
    assert answer.startswith(f"工单 {tk.number} 不归您管")
    # the leader manages the ticket, but not the grid it would go to
    answer = await refused(flow, LEADER, f"改派 {tk.number} 社岭网格", tk)
    assert answer == "社岭网格不归您管，不能改派过去。未作改动。"
    answer = await refused(flow, COORD, f"改派 {tk.number} 西关网格", tk)  # another community
    assert answer == "西关网格不归您管，不能改派过去。未作改动。"
    answer = await refused(flow, WORKER, f"改派 {tk.number} 社岭网格", tk)  # a worker
    assert answer.startswith(f"工单 {tk.number} 不归您管")
    assert not [x for x in flow.texts(WORKER3) if tk.number in x]


async def test_the_centre_reassigns_anywhere(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    assert await say(flow, CENTRE, f"改派 {tk.number} XC-01") \
        == f"已改派：{tk.number} → 西关网格王建军。"
    moved = await ticket(flow.tg, tk.number)
    assert flow.tg.app.deps.county.index.grids_by_id[moved.grid_id or 0].code == "XC-01"
    assert moved.community_id != tk.community_id


# ---------------------------------------------------------------------------------- 优先

async def test_priority_urgent_restarts_deadlines_on_the_clock(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    assert tk.priority == "normal"
    flow.tg.clock.advance(minutes=20)
    now = flow.tg.clock()
    answer = await say(flow, COORD, f"优先 {tk.number} 紧急")
    assert answer.startswith(f"已将工单 {tk.number} 设为紧急。接单时限 ")
    urgent = await ticket(flow.tg, tk.number)
    assert urgent.priority == "urgent" and urgent.state == S.ASSIGNED
    assert urgent.ack_due_at == now + timedelta(minutes=30)
    assert urgent.resolve_due_at == now + timedelta(hours=24)
    assert urgent.escalation_at == urgent.ack_due_at
    assert flow.texts(WORKER)[-1].startswith(f"工单 {tk.number} 已改为紧急。接单时限")
    ev = (await events(flow.tg, tk.id))[-1]
    assert (ev.kind, ev.actor_role, ev.note) == ("priority", "coordinator", "normal → urgent")

    answer = await refused(flow, COORD, f"优先 {tk.number} 紧急", tk)
    assert answer == f"工单 {tk.number} 已经是紧急，未作改动。"
    answer = await refused(flow, COORD, f"优先 {tk.number} 马上", tk)
    assert answer == "请写上工单号和紧急或一般，例如：优先 7 紧急"
    # back to normal: working time again, from now
    await say(flow, WORKER, f"接单 {tk.number}")
    acked = await ticket(flow.tg, tk.number)
    assert await say(flow, LEADER, f"优先 {tk.number} 一般") \
        == f"已将工单 {tk.number} 设为一般。办结时限 03-06 18:00。"
    normal = await ticket(flow.tg, tk.number)
    assert normal.ack_due_at == acked.ack_due_at  # met already: judged by the time it had


async def test_priority_refused_out_of_scope(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    answer = await refused(flow, OTHER_COORD, f"优先 {tk.number} 紧急", tk)
    assert answer.startswith(f"工单 {tk.number} 不归您管")
    await flow.say(RESIDENT, f"优先 {tk.number} 紧急", chat=GROUP)
    await flow.deliver()
    assert (await ticket(flow.tg, tk.number)).priority == "normal"


async def test_a_safety_hazard_is_urgent_from_the_start(crew: Flow) -> None:
    flow = crew
    tk = await report(flow, "报事 南关农贸市场门口电线裸露，有触电危险")
    assert tk.category == "安全隐患" and tk.priority == "urgent"
    assert tk.ack_due_at == tk.created_at + timedelta(minutes=30)
    assert tk.resolve_due_at == tk.created_at + timedelta(hours=24)


# ---------------------------------------------------------------------------------- 备注

async def test_remark_is_an_event_and_changes_nothing_else(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    group_before = len(flow.texts(GROUP))
    before = snapshot(await ticket(flow.tg, tk.number))
    assert await say(flow, LEADER, f"备注 {tk.number} 已电话联系报事人 明早处理") \
        == f"已记下工单 {tk.number} 的备注（仅工作人员可见）。"
    after = await ticket(flow.tg, tk.number)
    assert snapshot(after) == before
    ev = (await events(flow.tg, tk.id))[-1]
    assert (ev.kind, ev.actor_role, ev.note, ev.from_state) == (
        "remark", "leader", "已电话联系报事人 明早处理", None)
    assert len(flow.texts(GROUP)) == group_before  # the resident is not told


async def test_remark_refused_out_of_scope_and_without_words(crew: Flow) -> None:
    flow = crew
    tk = await report(flow)
    answer = await refused(flow, OTHER_COORD, f"备注 {tk.number} 看一下", tk)
    assert answer.startswith(f"工单 {tk.number} 不归您管")
    answer = await refused(flow, WORKER, f"备注 {tk.number} 我的备注", tk)
    assert answer.startswith(f"工单 {tk.number} 不归您管")
    answer = await refused(flow, COORD, f"备注 {tk.number}", tk)
    assert answer == "请写上工单号和备注，例如：备注 7 已电话联系报事人"
    assert await say(flow, COORD, "备注") == "请写上工单号和备注，例如：备注 7 已电话联系报事人"
