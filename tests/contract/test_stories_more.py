"""More of the core's stories, the same on every channel (tests/contract/conftest.py).

These were Telegram flow scenarios (tests/test_telegram_flow.py); here they use only what every
channel offers: join, say, choose, heard, deliver. What a channel shows beside a chat (toasts,
message edits, deep links) stays with that channel's own tests.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.notify.compose import local
from bot.tickets import sweeper
from models.enums import Category
from models.enums import TicketState as S
from models.tickets import Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.contract.channels import STAFF, Channel, tickets, told_after

REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"
NOT_ALLOWED = "抱歉，您无权处理这张工单。"
NOT_YOURS = "只能查询您自己报的工单。"
ONLY_REPORTER_RATES = "只有报事人可以评价这张工单。"
PHONE = re.compile(r"1\d{10}|\d{3}\*{4}\d{4}")



async def _ticket(ch: Channel, number: str) -> Ticket:
    return next(t for t in await tickets(ch) if t.number == number)


async def _events(ch: Channel, ticket_id: int) -> list[TicketEvent]:
    async with ch.app.deps.sm() as s:
        return list((await s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))).all())


async def _report(ch: Channel, text: str = REPORT, who: str = "resident") -> Ticket:
    before = len(await tickets(ch))
    await ch.say(who, text)
    await ch.deliver()
    made = await tickets(ch)
    assert len(made) == before + 1, ch.heard(who)
    return made[-1]



def _any(told: list[str], needle: str) -> bool:
    """A channel may join what one step says into one message (WeChat's passive reply)."""
    return any(needle in x for x in told)


def _told(ch: Channel, who: str, *needles: str) -> bool:
    return any(all(n in x for n in needles) for x in ch.heard(who))


def _must_have_told(ch: Channel, who: str, *needles: str) -> None:
    assert _told(ch, who, *needles), (who, needles, ch.heard(who))


def _grid(ch: Channel, tk: Ticket) -> str:
    return ch.app.deps.county.index.grid_name(tk.grid_id)


def _clock(ch: Channel) -> FakeClock:
    clock = ch.app.deps.clock
    assert isinstance(clock, FakeClock)
    return clock


async def _sweep(ch: Channel) -> int:
    done = await sweeper.sweep_once(ch.app.deps)
    await ch.deliver()
    return done


# --------------------------------------------------------------------------- staff joining

async def test_each_invite_tells_its_person_their_role_and_scope(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "leader", "coord"):
        await ch.join(who)
    assert ch.heard("worker") == ["绑定成功：您现在是 南关网格 的网格员。"]
    assert ch.heard("leader") == ["绑定成功：您现在是 南关网格 的网格长。"]
    assert ch.heard("coord") == ["绑定成功：您现在是 府南社区 的社区工作人员。"]


async def test_a_worker_who_joins_late_gets_the_cards_waiting(channel: Channel) -> None:
    ch = channel
    await ch.join("coord")
    tk = await _report(ch)
    assert tk.assignee_id is not None  # the worker from grids.yaml, not yet on any channel
    _must_have_told(ch, "coord", "没有绑定网格员")
    assert not _told(ch, "worker", tk.number)
    await ch.join("worker")
    _must_have_told(ch, "worker", f"【新工单】{tk.number}")
    await ch.choose("worker", "接单", tk.number)
    await ch.deliver()
    assert (await _ticket(ch, tk.number)).state == S.ACKNOWLEDGED


async def test_the_card_goes_to_the_grids_worker_only(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "leader", "worker3", "coord"):
        await ch.join(who)
    tk = await _report(ch)
    card = next(x for x in ch.heard("worker") if f"【新工单】{tk.number}" in x)
    # reported Tuesday 10:00: 2 working hours to acknowledge, 3 workdays to resolve
    for part in ("类别：环境卫生", "地点：南关农贸市场", "报事人：",
                 "内容：南关农贸市场门口垃圾堆了三天没人清运",
                 "接单时限：03-03 12:00", "办结时限：03-06 18:00"):
        assert part in card, part
    assert local(tk.ack_due_at, ch.app.deps.sla.tz) == "03-03 12:00"
    for who in ("leader", "worker3", "coord"):
        assert not _told(ch, who, tk.number), who


# --------------------------------------------------------------------------- a ticket's life

async def test_each_step_is_confirmed_to_the_worker_and_told_to_the_resident(
        channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.choose("worker", "接单", tk.number)
    await ch.deliver()
    _must_have_told(ch, "worker", f"已接单：{tk.number}。")

    told = await told_after(ch, "worker", ch.say("worker", f"进展 {tk.number} 已联系环卫所"))
    assert _any(told, f"进展已记录：{tk.number}。"), told
    assert (await _ticket(ch, tk.number)).state == S.IN_PROGRESS
    _must_have_told(ch, "resident", f"工单 {tk.number} 有新进展：已联系环卫所")

    await ch.choose("worker", "办结", tk.number)
    await ch.deliver()
    told = await told_after(ch, "worker", ch.say("worker", "垃圾已清运，地面已冲洗"))
    assert _any(told, f"已办结：{tk.number}，等待居民确认。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.RESOLVED and tk.resolution_note == "垃圾已清运，地面已冲洗"

    await ch.choose("resident", "满意", f"工单 {tk.number} 已办结")
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.CLOSED and tk.satisfaction == "satisfied" and tk.closed_at is not None
    # a second rating changes nothing
    n_events = len(await _events(ch, tk.id))
    await ch.say("resident", f"不满意 {tk.number}")
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.CLOSED and tk.satisfaction == "satisfied"
    assert len(await _events(ch, tk.id)) == n_events


async def test_unsatisfied_reopens_with_the_trail_kept(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.say("worker", f"办结 {tk.number} 已处理")
    await ch.deliver()
    await ch.choose("resident", "不满意", f"工单 {tk.number} 已办结")
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and tk.satisfaction == "unsatisfied"
    states = [(e.from_state, e.to_state) for e in await _events(ch, tk.id)]
    assert states[-2:] == [(S.RESOLVED, S.REOPENED), (S.REOPENED, S.ASSIGNED)]
    await ch.choose("worker", "接单", f"【重新派单】{tk.number}")
    await ch.deliver()
    assert (await _ticket(ch, tk.number)).state == S.ACKNOWLEDGED


async def test_a_pending_question_yields_to_progress_on_another_ticket(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    first = await _report(ch)
    second = await _report(ch, "报事 汽车站门口路灯坏了", who="neighbour")
    # in words: a bare number answers the newest card's choices (see the report)
    await ch.say("worker", f"办结 {first.number}")  # asks for the note of the first
    await ch.deliver()
    told = await told_after(ch, "worker", ch.say("worker", f"进展 {second.number} 已报修"))
    assert _any(told, f"进展已记录：{second.number}。"), told
    assert (await _ticket(ch, first.number)).state == S.ASSIGNED
    await ch.say("worker", "垃圾已清运")  # the pending question still belongs to the first
    await ch.deliver()
    first = await _ticket(ch, first.number)
    assert first.state == S.RESOLVED and first.resolution_note == "垃圾已清运"
    second = await _ticket(ch, second.number)
    assert second.state == S.ASSIGNED and second.resolution_note is None


async def test_staff_chatter_is_not_a_ticket_but_a_number_or_a_report_is(
        channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    told = await told_after(ch, "worker", ch.say("worker", "已经到现场了，正在清运"))
    assert any("您是网格工作人员" in x and "进展 工单号 内容" in x for x in told), told
    assert [t.number for t in await tickets(ch)] == [tk.number]
    # the card back by its number, with its actions
    told = await told_after(ch, "worker", ch.say("worker", tk.number))
    assert any(x.startswith(f"【新工单】{tk.number}") for x in told), told
    await ch.choose("worker", "接单", tk.number)
    await ch.deliver()
    assert (await _ticket(ch, tk.number)).state == S.ACKNOWLEDGED
    # and a worker may report as a resident
    own = await _report(ch, "报事 南关村口井盖松动了", who="worker")
    assert own.text == "南关村口井盖松动了" and own.reporter_user_id != tk.reporter_user_id
    _must_have_told(ch, "worker", f"已受理，工单号 {own.number}")


async def test_the_resident_hears_no_phone_number(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.choose("worker", "接单", tk.number)
    await ch.say("resident", tk.number)
    await ch.say("resident", "我的工单")
    await ch.deliver()
    heard = ch.heard("resident")
    assert len(heard) >= 4, heard
    for text in heard:
        assert not PHONE.search(text), text


# --------------------------------------------------------------------------- return, transfer

async def test_a_return_is_confirmed_and_the_resident_kept_informed(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "worker3", "coord"):
        await ch.join(who)
    tk = await _report(ch)
    await ch.choose("worker", "退回", tk.number)
    await ch.deliver()
    told = await told_after(ch, "worker", ch.say("worker", "市场归社岭网格管"))
    assert _any(told, f"已退回：{tk.number}。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.RETURNED and tk.assignee_id is None
    _must_have_told(ch, "coord", f"工单 {tk.number} 被", "退回：市场归社岭网格管")
    _must_have_told(ch, "resident", f"工单 {tk.number} 正在重新分派")
    pick = ch.choose("coord", "府南·社岭", f"【退回】工单 {tk.number}")
    told = await told_after(ch, "coord", pick)
    assert _any(told, f"已派单：{tk.number} → 社岭。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and _grid(ch, tk) == "社岭"
    assert "社岭网格" in ch.heard("resident")[-1]


async def test_a_transfer_moves_the_ticket_and_the_old_worker_loses_it(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    await ch.join("worker3")
    tk = await _report(ch)
    await ch.choose("worker", "转派", tk.number)
    await ch.deliver()
    _must_have_told(ch, "worker", "转派到哪个网格")
    told = await told_after(ch, "worker", ch.choose("worker", "府南·社岭", "转派到哪个网格"))
    assert _any(told, f"已转派：{tk.number} → 社岭。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and _grid(ch, tk) == "社岭"
    _must_have_told(ch, "worker3", f"【转派工单】{tk.number}")
    _must_have_told(ch, "resident", f"工单 {tk.number} 已转由社岭网格处理。")
    told = await told_after(ch, "worker", ch.say("worker", f"接单 {tk.number}"))
    assert _any(told, NOT_ALLOWED), told
    assert (await _ticket(ch, tk.number)).state == S.ASSIGNED


# --------------------------------------------------------------------------- where is it?

async def test_two_places_are_asked_and_the_resident_chooses(channel: Channel) -> None:
    ch = channel
    await ch.join("worker3")
    tk = await _report(ch, "报事 南关农贸市场和社岭小区之间路灯坏了")
    assert tk.state == S.REPORTED and tk.grid_id is None
    _must_have_told(ch, "resident", tk.number, "请问是在哪个位置")
    await ch.choose("resident", "社岭小区（社岭网格）", tk.number)
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and _grid(ch, tk) == "社岭"
    _must_have_told(ch, "resident", f"工单 {tk.number} 已派给社岭网格员")
    _must_have_told(ch, "worker3", f"【新工单】{tk.number}")


async def test_none_of_these_sends_it_to_the_coordinator_who_assigns(channel: Channel) -> None:
    ch = channel
    await ch.join("coord")
    tk = await _report(ch, "报事 信家坡小区路灯不亮")
    told = await told_after(ch, "resident", ch.choose("resident", "都不是", tk.number))
    said = f"工单 {tk.number} 暂未确定网格，已转社区工作人员处理。"
    # once in the chat (Telegram and the console also show a press's short answer beside it)
    shows_answers = ch.name in ("telegram", "console")
    assert sum(x.count(said) for x in told) == (2 if shows_answers else 1), told
    tk = await _ticket(ch, tk.number)
    assert tk.unrouted and tk.state == S.REPORTED
    _must_have_told(ch, "coord", "【待分派】", tk.number)
    told = await told_after(ch, "coord", ch.choose("coord", "府南·文坛", tk.number))
    assert _any(told, f"已派单：{tk.number} → 文坛。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and _grid(ch, tk) == "文坛"


async def test_an_unknown_place_unanswered_goes_to_the_queue(channel: Channel) -> None:
    ch = channel
    await ch.join("coord")
    tk = await _report(ch, "报事 楼下有人乱扔垃圾")
    assert tk.state == S.REPORTED and tk.route_status == "unknown"
    assert "没能确定具体位置" in ch.heard("resident")[-1]
    assert await _sweep(ch) == 0  # not yet due
    _clock(ch).advance(minutes=ch.app.settings.route_answer_minutes + 1)
    assert await _sweep(ch) == 1
    tk = await _ticket(ch, tk.number)
    assert tk.unrouted and tk.state == S.REPORTED and tk.escalation_at is None
    # nothing ties this chat to a community: 府南 has no claim on it
    _must_have_told(ch, "resident", f"工单 {tk.number} 暂未确定网格")
    assert not _told(ch, "coord", tk.number)


# --------------------------------------------------------------------------- queries

async def test_my_tickets_and_a_number_are_for_the_reporter_only(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    mine = await _report(ch)
    theirs = await _report(ch, "报事 汽车站候车厅漏雨", who="neighbour")

    told = "\n".join(await told_after(ch, "resident", ch.say("resident", "我的工单")))
    assert "您的工单：" in told and mine.number in told and theirs.number not in told
    told = "\n".join(await told_after(ch, "neighbour", ch.say("neighbour", "我的工单")))
    assert theirs.number in told and mine.number not in told

    told = "\n".join(await told_after(ch, "resident", ch.say("resident", mine.number)))
    assert f"工单 {mine.number}" in told and "状态：已派单" in told and "网格：南关" in told
    told = "\n".join(await told_after(ch, "neighbour",
                                       ch.say("neighbour", mine.number.lower())))
    assert NOT_YOURS in told and "垃圾" not in told


# --------------------------------------------------------------------------- rights

async def test_a_resident_cannot_act_on_a_card_and_nothing_changes(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    n_events = len(await _events(ch, tk.id))
    worker_heard = len(ch.heard("worker"))
    for words in (f"接单 {tk.number}", f"办结 {tk.number} 好了", f"退回 {tk.number} 不归这",
                  f"转派 {tk.number} 社岭", f"改类别 {tk.number} 噪音扰民"):
        told = await told_after(ch, "resident", ch.say("resident", words))
        assert _any(told, NOT_ALLOWED), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED and tk.category == Category.SANITATION
    assert len(await _events(ch, tk.id)) == n_events
    assert len(ch.heard("worker")) == worker_heard


async def test_someone_else_cannot_rate_a_resolved_ticket(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.say("worker", f"办结 {tk.number} 已处理")
    await ch.deliver()
    told = await told_after(ch, "neighbour", ch.say("neighbour", f"满意 {tk.number}"))
    assert _any(told, ONLY_REPORTER_RATES), told
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.RESOLVED and tk.satisfaction is None


# --------------------------------------------------------------------------- what a report is

async def test_a_very_long_report_is_cut_and_the_resident_told(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    # 7,010 characters: the bridge refuses more than 8,000, Telegram more than 4,096
    tk = await _report(ch, "报事 南关农贸市场垃圾" + "很多垃圾没人管" * 1000)
    assert 0 < len(tk.text) <= 2000 and tk.text.startswith("南关农贸市场垃圾")
    _must_have_told(ch, "resident", tk.number, "内容太长了，已截取前 2000 字受理。")
    _must_have_told(ch, "worker", f"【新工单】{tk.number}")


async def test_the_category_comes_from_the_words(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    for text, category in (
            (REPORT, Category.SANITATION),
            ("报事 南关村路灯不亮了", Category.MUNICIPAL),
            ("报事 南关村有人半夜跳广场舞，噪音太大", Category.NOISE),
            ("报事 南关村电动车楼道充电，电线乱拉", Category.SAFETY),
            ("报事 南关村有个事想问问", Category.OTHER)):
        tk = await _report(ch, text)
        assert tk.category == category.value, text
        _must_have_told(ch, "worker", tk.number, f"类别：{category.value}")
        _clock(ch).advance(minutes=5)


async def test_the_worker_changes_the_category_and_it_is_audited(channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.choose("worker", "改类别", tk.number)
    await ch.deliver()
    _must_have_told(ch, "worker", "选择类别")
    told = await told_after(ch, "worker", ch.choose("worker", "市政设施", "选择类别"))
    assert _any(told, "类别已改为：市政设施。"), told
    tk = await _ticket(ch, tk.number)
    assert tk.category == Category.MUNICIPAL and tk.state == S.ASSIGNED
    last = (await _events(ch, tk.id))[-1]
    assert last.kind == "category" and last.note == "环境卫生 → 市政设施" and last.actor_name
    await ch.say("resident", f"改类别 {tk.number} 噪音扰民")
    await ch.deliver()
    assert (await _ticket(ch, tk.number)).category == Category.MUNICIPAL


# --------------------------------------------------------------------------- deadlines

async def test_acknowledging_after_an_alert_moves_to_the_resolve_deadline(
        channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    await ch.join("leader")
    tk = await _report(ch)
    _clock(ch).advance(hours=2, minutes=1)
    assert await _sweep(ch) == 1
    _must_have_told(ch, "leader", "【超时未接单】", tk.number)
    await ch.choose("worker", "接单", tk.number)
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ACKNOWLEDGED and tk.escalation_level == 1
    assert tk.escalation_at == tk.resolve_due_at
    assert local(tk.resolve_due_at, ch.app.deps.sla.tz) == "03-06 18:00"


async def test_a_resolved_ticket_without_a_rating_closes_after_the_wait(
        channel: Channel) -> None:
    ch = channel
    await ch.join("worker")
    tk = await _report(ch)
    await ch.say("worker", f"办结 {tk.number} 已清运")
    await ch.deliver()
    days = ch.app.settings.confirm_days
    _clock(ch).advance(days=days, minutes=-1)
    assert await _sweep(ch) == 0
    _clock(ch).advance(minutes=2)
    assert await _sweep(ch) == 1
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.CLOSED and tk.satisfaction is None and tk.escalation_at is None
    # outside a messaging window this is a template notification: the number and the state
    _must_have_told(ch, "resident", tk.number, "结案")


# --------------------------------------------------------------------------- the command centre

needs_centre = pytest.mark.skipif(
    "centre" not in STAFF, reason="the Channel protocol has no command centre person yet")


@needs_centre
async def test_an_unacknowledged_ticket_climbs_leader_community_centre(
        channel: Channel) -> None:
    ch = channel
    ladder = ("leader", "coord", "centre")
    for who in ("worker", *ladder):
        await ch.join(who)
    tk = await _report(ch)  # Tuesday 10:00: acknowledge by 12:00
    assert local(tk.ack_due_at, ch.app.deps.sla.tz) == "03-03 12:00"
    _clock(ch).advance(minutes=119)
    assert await _sweep(ch) == 0
    step = ch.app.settings.escalation_steps_hours
    for rung, who in enumerate(ladder):
        _clock(ch).advance(minutes=2 if who == "leader" else step * 60)
        assert await _sweep(ch) == 1
        alerts = [x for x in ch.heard(who) if "【超时未接单】" in x]
        assert len(alerts) == 1 and tk.number in alerts[0] and "南关" in alerts[0], alerts
        for higher in ladder[rung + 1:]:  # nobody further up heard of it yet
            assert not _told(ch, higher, "超时"), higher
    _clock(ch).advance(hours=step * 3)
    assert await _sweep(ch) == 0  # the top rung is the last
    tk = await _ticket(ch, tk.number)
    assert tk.escalation_level == 3 and tk.escalation_at is None
    assert [e.note for e in await _events(ch, tk.id) if e.kind == "escalate"] == [
        "level 1", "level 2", "level 3"]


@needs_centre
async def test_a_report_nobody_can_place_goes_to_the_centre_who_routes_it(
        channel: Channel) -> None:
    ch = channel
    await ch.join("coord")
    await ch.join("centre")
    tk = await _report(ch, "报事 楼下有人乱扔垃圾")
    assert tk.community_id is None
    _clock(ch).advance(minutes=ch.app.settings.route_answer_minutes + 1)
    assert await _sweep(ch) == 1
    assert not _told(ch, "coord", tk.number)  # 府南 has no claim on it
    _must_have_told(ch, "centre", "【待分派】", tk.number)
    _must_have_told(ch, "resident", f"工单 {tk.number} 暂未确定网格，已转县指挥中心处理。")
    # nothing to go on: the centre picks the community, then one of its grids
    await ch.choose("centre", "府南社区", tk.number)
    await ch.deliver()
    _must_have_told(ch, "centre", "派给哪个网格")
    assert not _told(ch, "centre", "西城·西关")
    await ch.choose("centre", "府南·南关", "派给哪个网格")
    await ch.deliver()
    tk = await _ticket(ch, tk.number)
    assert tk.state == S.ASSIGNED
    assert tk.grid_id is not None
    assert ch.app.deps.county.index.grids_by_id[tk.grid_id].code == "FN-02"

