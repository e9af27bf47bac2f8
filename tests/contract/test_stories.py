"""The core's stories, the same on every channel: the same ticket states, the same words told.

Each test runs four times (tests/contract/conftest.py): Telegram through the real Dispatcher,
the console's own classes, the minimal channel (no buttons, no quoting, 600 characters), and
the WeChat Official Account through its real callback over HTTP, its sender and a fake API.
"""

from __future__ import annotations

import re

from models.enums import TicketState as S
from models.tickets import Ticket
from tests.contract.channels import Channel, tickets

NUMBER = re.compile(r"FS-\d{8}-\d{4}")
REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"



async def _report(ch: Channel, text: str = REPORT, who: str = "resident") -> Ticket:
    before = len(await tickets(ch))
    await ch.say(who, text)
    await ch.deliver()
    made = await tickets(ch)
    assert len(made) == before + 1, ch.heard(who)
    return made[-1]


async def _state(ch: Channel, number: str) -> str:
    return next(t.state for t in await tickets(ch) if t.number == number)


def _told(ch: Channel, who: str, *needles: str) -> bool:
    return any(all(n in x for n in needles) for x in ch.heard(who))


async def test_report_to_closed(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    assert _told(ch, "resident", f"工单号 {tk.number}", "南关网格员")
    assert _told(ch, "worker", f"【新工单】{tk.number}", "南关农贸市场")

    await ch.choose("worker", "接单", tk.number)
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ACKNOWLEDGED
    assert _told(ch, "resident", f"您的工单 {tk.number} 已由网格员")

    await ch.say("worker", f"进展 {tk.number} 已联系环卫所，下午来车")
    await ch.deliver()
    assert _told(ch, "resident", f"工单 {tk.number} 有新进展：已联系环卫所")

    await ch.choose("worker", "办结", tk.number)
    await ch.deliver()
    assert _told(ch, "worker", "请发送办结说明")
    await ch.say("worker", "垃圾已清运，地面已冲洗")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.RESOLVED
    assert _told(ch, "resident", f"工单 {tk.number} 已办结：垃圾已清运")

    await ch.choose("resident", "满意", f"工单 {tk.number} 已办结")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.CLOSED
    assert _told(ch, "resident", f"感谢评价！工单 {tk.number} 已结案。")


async def test_unsatisfied_reopens_and_the_leader_is_told(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    await ch.join("leader")
    tk = await _report(ch)
    await ch.say("worker", f"办结 {tk.number} 已处理")
    await ch.deliver()
    await ch.choose("resident", "不满意", f"工单 {tk.number} 已办结")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ASSIGNED
    assert _told(ch, "resident", f"收到，工单 {tk.number} 已重新派单处理。")
    assert _told(ch, "worker", f"【重新派单】{tk.number}")
    assert _told(ch, "leader", f"【督办】工单 {tk.number} 居民不满意")


async def test_someone_elses_ticket_is_refused_and_nothing_changes(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    await ch.join("worker3")
    tk = await _report(ch)
    await ch.say("worker3", f"接单 {tk.number}")
    await ch.say("neighbour", f"满意 {tk.number}")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ASSIGNED
    assert _told(ch, "worker3", "抱歉，您无权处理这张工单。")
    assert _told(ch, "neighbour", "只有报事人可以评价这张工单。")


async def test_a_returned_ticket_goes_to_the_coordinator_who_assigns_it(
        channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    await ch.join("worker3")
    await ch.join("coord")
    tk = await _report(ch)
    await ch.choose("worker", "退回", tk.number)
    await ch.deliver()
    assert _told(ch, "worker", "请说明退回原因")
    await ch.say("worker", "这是社岭小区的事")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.RETURNED
    assert _told(ch, "coord", f"【退回】工单 {tk.number}", "这是社岭小区的事")
    await ch.choose("coord", "府南·社岭", f"【退回】工单 {tk.number}")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ASSIGNED
    assert _told(ch, "worker3", f"【新工单】{tk.number}")


async def test_an_ambiguous_place_is_asked_and_the_resident_chooses(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch, "报事 信家坡小区路灯不亮")
    assert tk.state == S.REPORTED
    assert _told(ch, "resident", f"已受理，工单号 {tk.number}。请问是在哪个位置")
    await ch.choose("resident", "信家坡小区（文坛网格）", tk.number)
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ASSIGNED
    assert _told(ch, "resident", f"工单 {tk.number} 已派给文坛网格员")


async def test_a_double_press_acts_once(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.choose("worker", "接单", tk.number)
    await ch.say("worker", f"接单 {tk.number}")
    await ch.deliver()
    assert await _state(ch, tk.number) == S.ACKNOWLEDGED
    assert sum("已由网格员" in x and tk.number in x for x in ch.heard("resident")) == 1
    assert _told(ch, "worker", "这张工单已处理，当前状态：已接单")
