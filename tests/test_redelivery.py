"""Telegram redelivers what it is not sure we got; staff's own tickets are rated by the leader."""

from __future__ import annotations

from aiogram.methods import AnswerCallbackQuery

from bot.deps import Ctx
from bot.messages import Action
from models.enums import ChatKind, StaffRole
from models.enums import TicketState as S
from tests.conftest import TgHarness
from tests.fakes import make_callback_update, make_message_update
from tests.test_telegram_flow import (
    LEADER,
    NAMES,
    WORKER,
    Flow,
    events,
    invite,
    onboard,
    report,
    ticket,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed


async def test_a_redelivered_button_press_acts_once(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    msg, data = flow.button(WORKER, "办结", tk.number)
    press = make_callback_update(9001, WORKER, data, WORKER, msg.message_id,
                                 user_name=NAMES[WORKER], chat_type="private", bot=flow.bot)
    flow.clear()
    await flow.tg.feed(press)
    await flow.tg.feed(press)  # the same update, callback id and all
    answers = [r.text for r in flow.bot.requests_of(AnswerCallbackQuery)]
    assert answers == ["请发送办结说明（可附一张照片）。发送“取消”放弃。", "这个操作已处理。"]
    await flow.deliver()
    assert sum("请发送办结说明" in x for x in flow.texts(WORKER)) == 1


async def test_a_redelivered_start_code_does_not_call_the_code_invalid(tg: TgHarness) -> None:
    flow = Flow(tg)
    code = await invite(tg, StaffRole.WORKER, grid="FN-02")
    start = make_message_update(77, WORKER, "private", WORKER, NAMES[WORKER],
                                text=f"/start {code}", bot=flow.bot)
    await tg.feed(start)
    await tg.feed(start)
    await flow.deliver()
    said = flow.texts(WORKER)
    assert sum("绑定成功" in x for x in said) == 1, said
    assert not any("邀请码无效" in x for x in said), said


async def test_a_ticket_a_worker_reported_is_rated_by_the_grid_leader(flow: Flow) -> None:
    await onboard(flow, WORKER, LEADER)
    await flow.say(WORKER, "报事 南关农贸市场门口的路灯坏了")
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert tk.state == S.ASSIGNED
    await flow.press(WORKER, WORKER, "办结", tk.number)
    await flow.deliver()
    await flow.say(WORKER, "已换灯泡")
    await flow.deliver()
    resolved = [x for x in flow.texts(WORKER) if "已办结" in x and tk.number in x]
    assert resolved, flow.texts(WORKER)
    # the worker is told, without rating buttons; his leader is asked instead
    ask, _ = flow.last(LEADER, "【请评价】")
    assert tk.number in ask.text and "已换灯泡" in ask.text
    refused = await flow.tap(WORKER, f"t1:rate:{tk.id}:satisfied", WORKER, 1_000_000)
    assert refused.show_alert and refused.text == "这张工单由网格工作人员上报，由网格长评价。"
    assert (await ticket(flow.tg)).state == S.RESOLVED
    n_events = len(await events(flow.tg, tk.id))
    answer = await flow.press(LEADER, LEADER, "满意", tk.number)
    assert not answer.show_alert, answer.text
    done = await ticket(flow.tg)
    assert done.state == S.CLOSED and done.satisfaction == "satisfied"
    assert len(await events(flow.tg, tk.id)) == n_events + 1


async def test_a_forged_ticket_id_past_the_integer_range_is_refused(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    for data in ("t1:ack:99999999999999999999:", f"t1:ack:{2**63}:", "t1:ack:-1:"):
        answer = await flow.tap(WORKER, data, WORKER, 1_000_000)
        assert answer.show_alert and answer.text == "抱歉，您无权处理这张工单。", data
    # the core refuses it too, whatever channel hands it over
    ctx = Ctx("telegram", str(WORKER), "郑波", str(WORKER), ChatKind.PRIVATE)
    answer_text, ok = await flow.tg.app.core.on_action(ctx, Action("ack", 10**20))
    assert not ok and answer_text == "抱歉，您无权处理这张工单。"
    assert (await ticket(flow.tg)).state == S.ASSIGNED == tk.state
