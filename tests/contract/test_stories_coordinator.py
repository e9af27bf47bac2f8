"""A coordinator's words, the same on every channel (tests/contract/conftest.py): 优先, 超时,
改派 and 备注 allowed in scope, and refused with a reason outside it."""

from __future__ import annotations

from sqlalchemy import select

from models.enums import TicketState as S
from models.tickets import Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.contract.channels import Channel, has, tickets, told_after

REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"


async def _ticket(ch: Channel) -> Ticket:
    async with ch.app.deps.sm() as s:
        rows = list((await s.scalars(select(Ticket))).all())
    assert len(rows) == 1
    return rows[0]


async def _event_kinds(ch: Channel, ticket_id: int) -> list[str]:
    async with ch.app.deps.sm() as s:
        return list((await s.scalars(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))).all())




async def test_a_coordinator_steers_a_ticket_in_words(channel: Channel) -> None:
    ch = channel
    clock = ch.app.deps.clock
    assert isinstance(clock, FakeClock)
    for who in ("worker", "worker3", "coord"):
        await ch.join(who)
    await ch.say("resident", REPORT)
    await ch.deliver()
    tk = await _ticket(ch)
    n = tk.number

    told = await told_after(ch, "coord", ch.say("coord", f"优先 {n} 紧急"))
    assert has(told, f"已将工单 {n} 设为紧急", "接单时限"), told
    assert has(ch.heard("worker"), f"工单 {n} 已改为紧急")
    assert (await _ticket(ch)).priority == "urgent"

    clock.advance(minutes=31)  # urgent: 30 minutes to acknowledge
    told = await told_after(ch, "coord", ch.say("coord", "超时"))
    assert has(told, n, "未接单"), told

    told = await told_after(ch, "coord", ch.say("coord", f"改派 {n} 社岭网格"))
    assert has(told, f"已改派：{n} → 社岭网格"), told
    assert has(ch.heard("worker3"), f"【改派工单】{n}")
    assert has(ch.heard("worker"), f"工单 {n} 已改派给社岭网格")
    moved = await _ticket(ch)
    assert moved.state == S.ASSIGNED
    assert ch.app.deps.county.index.grid_name(moved.grid_id) == "社岭"

    told = await told_after(ch, "coord", ch.say("coord", f"备注 {n} 已电话联系报事人"))
    assert has(told, f"已记下工单 {n} 的备注"), told

    # the old worker manages nothing here: refused, with the reason, and nothing changes
    kinds = await _event_kinds(ch, tk.id)
    told = await told_after(ch, "worker", ch.say("worker", f"备注 {n} 不是我的了"))
    assert has(told, f"工单 {n} 不归您管"), told
    told = await told_after(ch, "worker", ch.say("worker", f"改派 {n} 南关网格"))
    assert has(told, f"工单 {n} 不归您管"), told
    assert await _event_kinds(ch, tk.id) == kinds
    # 优先, 改派 (a transition back to assigned, in 社岭), 备注: each audited once
    assert kinds[-3:] == ["priority", "transition", "remark"]



async def test_a_neighbour_follows_the_open_ticket_and_the_coordinator_splits_it(
        channel: Channel) -> None:
    ch = channel
    for who in ("worker", "coord"):
        await ch.join(who)
    await ch.say("resident", REPORT)
    await ch.deliver()
    told = await told_after(ch, "neighbour", ch.say(
        "neighbour", "报事 南关农贸市场门口的垃圾还是没人管"))
    lead, child = await tickets(ch)
    assert (child.state, child.merged_into_id) == (S.MERGED, lead.id)
    assert has(told, f"已登记为工单 {lead.number}"), told
    assert has(ch.heard("worker"), f"工单 {lead.number} 又有居民反映同一问题（共 2 人反映）")

    # a worker may not undo the link; the coordinator may, and the neighbour is told
    told = await told_after(ch, "worker", ch.say("worker", f"拆分 {child.number}"))
    assert has(told, "合并和拆分由工单所在社区的工作人员或县指挥中心操作"), told
    told = await told_after(ch, "coord", ch.say("coord", f"拆分 {child.number}"))
    assert has(told, f"已拆分：工单 {child.number} 单独办理，已派给南关网格"), told
    assert has(ch.heard("neighbour"), f"您反映的问题已单独立为工单 {child.number}")
    assert has(ch.heard("worker"), child.number, "【")  # its own card now
    split = (await tickets(ch))[1]
    assert (split.state, split.merged_into_id) == (S.ASSIGNED, None)

    # and merged back by hand
    told = await told_after(ch, "coord", ch.say(
        "coord", f"合并 {child.number} 到 {lead.number}"))
    assert has(told, f"已将工单 {child.number} 并入 {lead.number}"), told
    assert (await tickets(ch))[1].state == S.MERGED
