"""转办 on every channel (tests/contract/conftest.py): a ticket handed to a partner unit, whose
contact (joined by the unit's invite) works it in words while the worker hears each step and
the resident the usual messages; a resident, an unknown unit and a unit not serving the
ticket's grid are refused, and nothing changes. A 代报 handed over reaches the unit without the
resident's name or phone."""

from __future__ import annotations

from sqlalchemy import select

from models.enums import TicketState as S
from models.partners import Partner
from models.tickets import Ticket, TicketEvent
from tests.contract.channels import Channel, has, told_after
from tests.contract.test_stories_offline import EVERYONE, FILED, PHONE, on_the_wire

HONGDA = "浮山县宏达物业有限公司"  # config/sample/partners.csv: serves FN-02 and FN-03
REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"
NOT_ALLOWED = "只有这张工单的网格员、网格长、社区工作人员和县指挥中心可以转办。未作改动。"


async def _ticket(ch: Channel) -> Ticket:
    async with ch.app.deps.sm() as s:
        rows = list((await s.scalars(select(Ticket))).all())
    assert len(rows) == 1
    return rows[0]


async def _events(ch: Channel, ticket_id: int) -> list[tuple[str, str | None, str]]:
    async with ch.app.deps.sm() as s:
        return [(e.kind, e.to_state, e.actor_name) for e in (await s.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.id))).all()]




async def _reported(ch: Channel) -> Ticket:
    await ch.say("resident", REPORT)
    await ch.deliver()
    return await _ticket(ch)


async def test_the_worker_hands_over_and_the_unit_works_it(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "coord"):
        await ch.join(who)
    told = await told_after(ch, "partner", ch.join("partner"))
    assert has(told, f"绑定成功：您现在是{HONGDA}的联系人。"), told
    tk = await _reported(ch)
    n = tk.number

    told = await told_after(ch, "worker", ch.say("worker", f"转办 {n} 宏达物业 请今天清运"))
    assert has(told, f"已转办：{n} → {HONGDA}，已发给张经理。"), told
    card = ch.heard("partner")[-1]
    assert card.startswith(f"【转办工单】{n}\n南关网格（网格员"), card
    assert "说明：请今天清运" in card
    assert f"请回复：接单 {n}；进展 {n} 内容；办结 {n} 办理结果" in card
    assert "张大妈" not in card  # who reported it is the worker's to know
    handed = await _ticket(ch)
    async with ch.app.deps.sm() as s:
        unit = await s.get(Partner, handed.partner_id)
    assert unit is not None and unit.code == "WY-HD"
    assert (handed.state, handed.resolve_due_at) == (S.ASSIGNED, tk.resolve_due_at)

    told = await told_after(ch, "partner", ch.say("partner", f"接单 {n}"))
    assert has(told, f"已接单：{n}。有进展请回复：进展 {n} 内容"), told
    assert has(ch.heard("worker"), f"工单 {n}：{HONGDA}张经理已接单。")
    assert has(ch.heard("resident"), f"您的工单 {n} 已由{HONGDA}接单。")

    told = await told_after(ch, "partner", ch.say("partner", f"进展 {n} 已派保洁员前往"))
    assert has(told, f"进展已记录：{n}。"), told
    assert has(ch.heard("worker"), f"工单 {n}：{HONGDA}张经理报进展：已派保洁员前往")
    assert has(ch.heard("resident"), f"工单 {n} 有新进展：已派保洁员前往")

    told = await told_after(ch, "partner", ch.say("partner", f"办结 {n}"))
    assert has(told, f"请在工单号后写上办理结果，例如：办结 {n} 路灯已换好"), told
    assert (await _ticket(ch)).state == S.IN_PROGRESS
    told = await told_after(ch, "partner", ch.say("partner", f"办结 {n} 垃圾已清运完毕"))
    assert has(told, f"已办结：{n}，等待居民确认。"), told
    assert has(ch.heard("worker"),
                f"工单 {n}：{HONGDA}张经理已办结：垃圾已清运完毕。等待居民评价。")
    assert has(ch.heard("resident"), f"工单 {n} 已办结：垃圾已清运完毕")

    await ch.choose("resident", "满意", f"工单 {n} 已办结")
    await ch.deliver()
    done = await _ticket(ch)
    assert (done.state, done.resolution_note) == (S.CLOSED, "垃圾已清运完毕")
    steps = [(k, st, who) for k, st, who in await _events(ch, tk.id) if who == "张经理"]
    assert steps == [("transition", st, "张经理")
                     for st in (S.ACKNOWLEDGED, S.IN_PROGRESS, S.RESOLVED)]


async def test_handing_over_is_refused_with_the_reason(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "worker3", "coord", "partner"):
        await ch.join(who)
    tk = await _reported(ch)
    n = tk.number
    before = await _events(ch, tk.id)

    told = await told_after(ch, "resident", ch.say("resident", f"转办 {n} 宏达物业"))
    assert has(told, NOT_ALLOWED), told
    # 社岭's worker is staff, but not this ticket's
    told = await told_after(ch, "worker3", ch.say("worker3", f"转办 {n} 宏达物业"))
    assert has(told, NOT_ALLOWED), told
    told = await told_after(ch, "worker", ch.say("worker", f"转办 {n} 天马物业 快点"))
    assert has(told, f"没有找到“天马物业”这个单位。能接工单 {n} 的单位有：{HONGDA}、"
                      "县住建局。"), told
    told = await told_after(ch, "worker", ch.say("worker", f"转办 {n} 锦绣业委会"))
    assert has(told, f"锦绣花园业主委员会不负责工单 {n} 所在的地方。能接工单 {n} 的单位有："
                      f"{HONGDA}、县住建局。未作改动。"), told
    # a unit's contact acts only on what was handed to the unit
    told = await told_after(ch, "partner", ch.say("partner", f"接单 {n}"))
    assert has(told, "抱歉，您无权处理这张工单。"), told

    after = await _ticket(ch)
    assert (after.partner_id, after.state) == (None, S.ASSIGNED)
    assert await _events(ch, tk.id) == before
    assert not has(ch.heard("partner"), "【转办工单】")

    # the coordinator hands it to a unit nobody of which has joined: said plainly
    told = await told_after(ch, "coord", ch.say("coord", f"转办 {n} 县住建局 路面需要修补"))
    assert has(told, f"已记下转办：{n} → 县住建局。但该单位还没有人接入，工单没能发给对方，"
                      "请电话联系县住建局。办理时限不变。"), told
    assert has(ch.heard("worker"), f"工单 {n} 已由", "转办给县住建局。")
    assert [k for k, _st, _who in await _events(ch, tk.id)][len(before):] == ["transfer_partner"]



async def _filed_handed_and_resolved(ch: Channel) -> tuple[str, list[str]]:
    """代报 by 社岭's worker about 南关, handed by 南关's worker to 宏达物业, whose contact
    acknowledges and resolves it: (the number, what the worker was told of the 办结)."""
    for who in ("worker", "worker3", "partner"):
        await ch.join(who)
    await ch.say("worker3", FILED)
    await ch.deliver()
    n = (await _ticket(ch)).number
    told = await told_after(ch, "worker", ch.say("worker", f"转办 {n} 宏达物业"))
    assert has(told, f"已转办：{n} → {HONGDA}，已发给张经理。"), told
    card = ch.heard("partner")[-1]
    assert card.startswith(f"【转办工单】{n}\n南关网格（网格员"), card
    assert "南关农贸市场门口垃圾堆了三天没人清运" in card and "张大妈" not in card

    told = await told_after(ch, "partner", ch.say("partner", f"接单 {n}"))
    assert has(told, f"已接单：{n}。"), told
    assert has(ch.heard("worker"), f"工单 {n}：{HONGDA}张经理已接单。")
    told = await told_after(ch, "partner", ch.say("partner", f"办结 {n} 垃圾已清运完毕"))
    assert has(told, f"已办结：{n}。报事人无法在线确认，3 天后自动结案。"), told
    return n, [x for x in ch.heard("worker") if f"工单 {n}：{HONGDA}张经理已办结" in x]


async def test_a_report_filed_face_to_face_is_handed_over_without_the_phone(
        channel: Channel) -> None:
    """代报 then 转办: the unit reads the problem and where, never who or their number; the
    resident has no chat here, so only the worker hears the unit's steps."""
    ch = channel
    n, told = await _filed_handed_and_resolved(ch)
    assert has(told, f"工单 {n}：{HONGDA}张经理已办结：垃圾已清运完毕。"), told
    assert (await _ticket(ch)).state == S.RESOLVED
    assert not has(ch.heard("resident"), n)
    for who in EVERYONE:
        assert not [x for x in ch.heard(who) if PHONE in x], (ch.name, who)
    assert not [x for x in on_the_wire(ch) if PHONE in x], ch.name


async def test_the_worker_is_not_told_a_face_to_face_report_awaits_a_rating(
        channel: Channel) -> None:
    _n, told = await _filed_handed_and_resolved(channel)
    assert told and not has(told, "等待居民评价"), told
    assert has(told, "3 天后自动结案"), told
