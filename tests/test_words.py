"""Every action as words, with the same rights as the buttons; questions yield to them."""

from __future__ import annotations

import pytest

from bot.tickets.words import Said, parse
from models.enums import TicketState as S
from tests.test_telegram_flow import (
    COORD,
    GROUP,
    NEIGHBOUR,
    RESIDENT,
    WORKER,
    WORKER3,
    Flow,
    events,
    report,
    ticket,
    tickets,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

NOT_ALLOWED = "抱歉，您无权处理这张工单。"


@pytest.mark.parametrize(("text", "said"), [
    ("接单 FS-20261130-0007", Said("ack", "FS-20261130-0007", "")),
    ("接單 7", Said("ack", "7", "")),
    ("办结：20261130-0007，已清运。", Said("resolve", "20261130-0007", "已清运。")),
    ("进展 3号楼的灯已修好", Said("progress", None, "3号楼的灯已修好")),
    ("不满意还是没修好", Said("rate", None, "还是没修好", "unsatisfied")),
    ("基本滿意 12", Said("rate", "12", "", "fairly")),
    ("满意！", Said("rate", None, "", "satisfied")),
    ("转派 5 社岭", Said("transfer", "5", "社岭")),
    ("不予受理 5 重复报事", Said("reject", "5", "重复报事")),
])
def test_phrases_parse(text: str, said: Said) -> None:
    assert parse(text, "FS") == said


@pytest.mark.parametrize("text", ["接单了吗", "满意度不高", "报事 南关路灯坏了", "谢谢", "办结了"])
def test_sentences_that_only_start_like_a_verb_are_not_actions(text: str) -> None:
    assert parse(text, "FS") is None


def _seq(number: str) -> str:
    return str(int(number.rsplit("-", 1)[1]))


async def test_the_whole_story_in_words_only(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    short = _seq(tk.number)

    await flow.say(RESIDENT, f"接单 {short}")  # a resident cannot acknowledge
    await flow.deliver()
    assert flow.texts(RESIDENT)[-1] in (NOT_ALLOWED, f"没有找到工单 {short}。")
    assert (await ticket(flow.tg)).state == S.ASSIGNED

    await flow.say(WORKER, f"接单 {short}")
    await flow.deliver()
    assert flow.texts(WORKER)[-1].startswith(f"已接单：{tk.number}")
    assert any(f"您的工单 {tk.number} 已由网格员" in x for x in flow.texts(GROUP))
    await flow.say(WORKER, f"接单 {tk.number}")  # once more: already done, nothing changes
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == "这张工单已处理，当前状态：已接单。本次操作未执行。"

    await flow.say(WORKER, f"进展 {short} 已联系环卫所，下午来车")
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"进展已记录：{tk.number}。"
    assert (await ticket(flow.tg)).state == S.IN_PROGRESS
    await flow.say(WORKER, "办结 已清运完毕")  # no number: their only ticket in hand
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"已办结：{tk.number}，等待居民确认。"
    assert (await ticket(flow.tg)).state == S.RESOLVED

    await flow.say(NEIGHBOUR, f"满意 {tk.number}", chat=GROUP)  # not the reporter
    await flow.deliver()
    assert flow.texts(GROUP)[-1] == "只有报事人可以评价这张工单。"
    await flow.say(RESIDENT, "满意", chat=GROUP)
    await flow.deliver()
    done = await ticket(flow.tg)
    assert done.state == S.CLOSED and done.satisfaction == "satisfied"
    assert f"感谢评价！工单 {tk.number} 已结案。" in flow.texts(GROUP)[-1]


async def test_someone_elses_ticket_by_words_is_refused(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    n_events = len(await events(flow.tg, tk.id))
    for text in (f"接单 {tk.number}", f"办结 {tk.number} 好了", f"退回 {tk.number} 不归我管"):
        await flow.say(WORKER3, text)
    await flow.deliver()
    assert flow.texts(WORKER3)[-3:] == [NOT_ALLOWED] * 3
    assert len(await events(flow.tg, tk.id)) == n_events


async def test_return_and_reject_in_words(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.say(WORKER, f"退回 {tk.number} 不是我们网格的")
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"已退回：{tk.number}。"
    assert any("被郑波退回：不是我们网格的" in x for x in flow.texts(COORD))
    await flow.say(COORD, f"不予受理 {tk.number}")  # a reason is needed
    await flow.deliver()
    assert "请写上不予受理的原因" in flow.texts(COORD)[-1]
    await flow.say(COORD, f"不予受理 {tk.number} 属于私人物业合同纠纷，已告知走法律途径")
    await flow.deliver()
    assert flow.texts(COORD)[-1] == f"已不予受理：{tk.number}，已告知报事人。"
    assert (await ticket(flow.tg)).state == S.REJECTED
    assert any("不予受理：属于私人物业合同纠纷" in x for x in flow.texts(GROUP))


async def test_queries_inside_a_sentence_and_a_workers_own_list(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    for text in (f"查询 {tk.number}", f"{tk.number} 怎么样了", f"{tk.number.lower()}进度"):
        await flow.say(RESIDENT, text)
    await flow.deliver()
    answers = flow.texts(RESIDENT)[-3:]
    assert all(a.startswith(f"工单 {tk.number}\n状态：已派单") for a in answers), answers
    assert len(await tickets(flow.tg)) == 1

    await flow.say(WORKER, "我的工单")
    await flow.deliver()
    mine = flow.texts(WORKER)[-1]
    assert mine.startswith("您负责的工单（1 张）：") and f"{tk.number}｜待接单" in mine
    # in a group the list shows no complaint text to the neighbours
    await flow.say(RESIDENT, "/my", chat=GROUP)
    await flow.deliver()
    assert f"{tk.number}｜已派单" in flow.texts(GROUP)[-1]
    assert "垃圾" not in flow.texts(GROUP)[-1]


async def test_a_waiting_question_yields_to_a_query_and_a_new_report(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, "这里有个坑很危险")  # privately, no place: the bot asks where
    await flow.deliver()
    first = await ticket(flow.tg)
    assert first.state == S.REPORTED
    await flow.say(RESIDENT, f"{first.number} 怎么样了")
    await flow.deliver()
    said = flow.texts(RESIDENT)
    assert said[-2].startswith(f"工单 {first.number}\n状态：已受理")
    assert said[-1] == (f"（工单 {first.number} 还在等您说明具体位置：回复那条提问，"
                        "写上小区/街道和楼号，或发送位置。）")
    await flow.say(RESIDENT, "报事 南关村口路灯坏了")
    await flow.deliver()
    made = await tickets(flow.tg)
    assert len(made) == 2 and made[1].text == "南关村口路灯坏了"
    assert made[1].state == S.ASSIGNED
    assert (await ticket(flow.tg, first.number)).state == S.REPORTED  # still asked
    assert any("还在等您说明具体位置" in x for x in flow.texts(RESIDENT)[-3:])


async def test_a_bare_rating_with_nothing_to_rate_is_not_a_ticket(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, "满意")
    await flow.say(RESIDENT, "不满意，楼下垃圾又堆起来了")  # with words: a new problem
    await flow.deliver()
    assert flow.texts(RESIDENT)[0] == "您现在没有等待评价的工单。有新问题请直接发送。"
    made = await tickets(flow.tg)
    assert [t.text for t in made] == ["不满意，楼下垃圾又堆起来了"]


async def test_thanks_while_a_question_waits_is_not_the_answer(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, "这里有个坑很危险")  # privately, no place: the bot asks where
    await flow.deliver()
    first = await ticket(flow.tg)
    await flow.say(RESIDENT, "谢谢")
    await flow.deliver()
    assert flow.texts(RESIDENT)[-2:] == [
        "不客气！有新问题随时发给我。",
        f"（工单 {first.number} 还在等您说明具体位置：回复那条提问，"
        "写上小区/街道和楼号，或发送位置。）"]
    await flow.say(RESIDENT, "在南关农贸市场门口")  # the real answer still counts
    await flow.deliver()
    assert (await ticket(flow.tg)).state == S.ASSIGNED
