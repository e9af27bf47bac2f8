"""What people read says what really happened, in plain Chinese (issue: wording a county
office would find odd)."""

from __future__ import annotations

from bot.tickets import sweeper
from models.enums import StaffRole
from models.enums import TicketState as S
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    LEADER,
    RESIDENT,
    WORKER,
    Flow,
    invite,
    onboard,
    report,
    ticket,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed


async def test_the_card_keeps_the_building_number(staffed: Flow) -> None:
    flow = staffed
    tk = await report(staffed, "报事 南关村3号楼门口垃圾堆了好几天")
    card, _ = flow.last(WORKER, tk.number)
    assert "地点：南关村3号楼" in card.text


async def test_centre_staff_are_bound_in_one_plain_sentence(flow: Flow) -> None:
    code = await invite(flow.tg, StaffRole.CENTRE)
    await flow.say(CENTRE, f"/start {code}")
    await flow.deliver()
    assert flow.texts(CENTRE) == ["绑定成功：您现在是县指挥中心工作人员。"]


async def test_a_resident_is_not_told_a_worker_has_it_when_none_can_be_reached(
        flow: Flow) -> None:
    await onboard(flow, COORD)  # 南关's worker has not joined yet
    tk = await report(flow)
    receipt = flow.texts(GROUP)[-1]
    assert f"已受理，工单号 {tk.number}。已转到南关网格；网格员暂未接入，已请社区工作人员跟进" \
        in receipt
    assert "已派给" not in receipt
    assert flow.last(COORD, "没有绑定网格员")


async def test_with_no_community_staff_the_centre_is_told_and_the_resident_hears_so(
        flow: Flow) -> None:
    await onboard(flow, CENTRE)
    tk = await report(flow)
    assert "已请县指挥中心跟进" in flow.texts(GROUP)[-1]
    assert flow.last(CENTRE, tk.number)


async def test_an_unplaceable_report_that_reaches_the_centre_says_the_centre(flow: Flow) -> None:
    await onboard(flow, CENTRE)
    tk = await report(flow, "报事 楼下有人乱扔垃圾")
    flow.tg.clock.advance(minutes=flow.tg.app.settings.route_answer_minutes + 1)
    assert await sweeper.sweep_once(flow.tg.app.deps) == 1
    await flow.deliver()
    assert flow.texts(GROUP)[-1].endswith(f"工单 {tk.number} 暂未确定网格，已转县指挥中心处理。")


async def test_a_leader_sees_returned_tickets_of_their_grid_in_the_queue(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.say(WORKER, f"退回 {tk.number} 这事归物业管")
    await flow.deliver()
    flow.clear()
    await flow.say(LEADER, "/queue")
    await flow.deliver()
    said = flow.texts(LEADER)
    assert said[0] == "待分派工单：" and any(tk.number in x for x in said[1:]), said
    assert not any("无权" in x for x in said)
    await flow.say(RESIDENT, "/queue")
    await flow.deliver()
    assert flow.texts(RESIDENT)[-1] == "待分派队列由社区工作人员、网格长和县指挥中心处理。"
    answer = await flow.press(LEADER, LEADER, "府南·南关", tk.number)
    assert not answer.show_alert, answer.text
    assert (await ticket(flow.tg)).state == S.ASSIGNED
