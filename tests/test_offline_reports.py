"""代报: staff file a report for a resident met face to face, through the real core.

The resident's phone is kept for the command centre's call-back only: these tests look for it
everywhere else a message, a ticket or an event could carry it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.app import build_app
from bot.callbacks.plan import Rules, plan_week
from bot.callbacks.sheet import lines
from bot.callbacks.week import Week
from bot.deps import Ctx
from bot.messages import Inbound
from bot.people.onboarding import create_invite
from bot.tickets import sweeper
from bot.tickets.offline_words import Filing, parse
from config.settings import Settings
from models.enums import ChatKind, StaffRole
from models.enums import TicketState as S
from models.people import Identity
from models.tickets import Attachment, Outbox, Ticket
from models.wecom import ResidentContact
from tests.conftest import SHANGHAI, FakeClock
from tests.fakes import make_message_update
from tests.pg import fresh_database
from tests.test_callbacks import QUOTA
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    NAMES,
    RESIDENT,
    WORKER,
    WORKER3,
    Flow,
    buttons,
    events,
    onboard,
    plain,
    tickets,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

PHONE = "13912345678"
LANDLINE = "03571234567"
USAGE = ("请这样发送：代报 姓名 电话 问题，例如：代报 张大妈 13800000000 南关村口路灯坏了。"
         "姓名和电话可以不写，可以附照片。")
NO_PHONE = "没有留电话：办结后指挥中心无法电话回访这位居民。"

# --------------------------------------------------------------------------- the words


@pytest.mark.parametrize(("said", "filing"), [
    ("代报 张大妈 13912345678 南关村口路灯坏了", Filing("张大妈", PHONE, "南关村口路灯坏了", 1)),
    ("代报 13912345678 南关村口路灯坏了", Filing("", PHONE, "南关村口路灯坏了", 1)),
    ("代报　王大爷，南关村口路灯坏了", Filing("王大爷", "", "南关村口路灯坏了", 0)),
    ("代报 南关村口路灯坏了", Filing("", "", "南关村口路灯坏了", 0)),
    ("代報 姓名：張三 電話：0357-1234567 內容：南關村口路燈壞了，很久了",
     Filing("張三", LANDLINE, "南關村口路燈壞了，很久了", 1)),
    ("代报：李四，电话：139 1234 5678，楼道灯坏了", Filing("李四", PHONE, "楼道灯坏了", 1)),
    ("代报 ＋86 139-1234-5678 灯坏了", Filing("", PHONE, "灯坏了", 1)),
    ("代报 １３９１２３４５６７８ 灯坏了", Filing("", PHONE, "灯坏了", 1)),
    ("代报 (0357)1234567 楼下噪音", Filing("", LANDLINE, "楼下噪音", 1)),
    # a phone written anywhere never stays in the problem's text
    ("代报 张大妈 路灯坏了 13912345678", Filing("张大妈", PHONE, "路灯坏了", 1)),
    ("代报 南关村口路灯坏了，电话13912345678，谢谢", Filing("", PHONE, "南关村口路灯坏了 谢谢", 1)),
    ("代报 老张 3号楼漏水", Filing("老张", "", "3号楼漏水", 0)),
    ("代报 张大妈 13912345678", Filing("张大妈", PHONE, "", 1)),
    ("代报", Filing("", "", "", 0)),
    ("代报 张三 13912345678 另一个 13800000001 灯坏", Filing("张三", PHONE, "另一个 灯坏", 2)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_the_words_of_a_filing(said: str, filing: Filing) -> None:
    assert parse(said) == filing


@pytest.mark.parametrize("said", ["代报名的事怎么样了", "代报销单据丢了", "报事 代报", "帮忙代报"])
def test_other_words_are_no_filing(said: str) -> None:
    assert parse(said) is None


# --------------------------------------------------------------------------- helpers

async def say(flow: Flow, user: int, words: str | None = None, **kw: Any) -> str:
    await flow.say(user, words, **kw)
    await flow.deliver()
    return plain(flow.texts(user)[-1])


async def offline(flow: Flow) -> list[Ticket]:
    return [tk for tk in await tickets(flow.tg) if tk.channel == "offline"]


async def person_of(flow: Flow, user: int) -> int | None:
    async with flow.tg.app.deps.sm() as s:
        return await s.scalar(select(Identity.person_id).where(Identity.user_id == str(user)))


async def contacts(flow: Flow) -> list[tuple[int, str, str, str]]:
    async with flow.tg.app.deps.sm() as s:
        return [(c.ticket_id, c.name, c.mobile, c.source)
                for c in await s.scalars(select(ResidentContact).order_by(ResidentContact.id))]


async def attached(flow: Flow, ticket_id: int) -> list[str]:
    async with flow.tg.app.deps.sm() as s:
        return list(await s.scalars(select(Attachment.file_id).where(
            Attachment.ticket_id == ticket_id).order_by(Attachment.id)))


async def rows_of(flow: Flow, table: str) -> list[str]:
    """Every row of `table`, every column, as text."""
    async with flow.tg.app.deps.sm() as s:
        return [repr(tuple(r)) for r in (await s.execute(text(f"SELECT * FROM {table}"))).all()]


# --------------------------------------------------------------------------- filing

async def test_a_worker_files_for_a_resident_in_their_own_grid(staffed: Flow) -> None:
    flow = staffed
    answer = await say(flow, WORKER3, f"代报 张大妈 {PHONE} 楼道里的灯坏了好几天")
    [tk] = await offline(flow)
    assert answer == f"已代报，工单号 {tk.number}，属于您负责的社岭网格，已派给您本人，请接单处理。"
    assert tk.number == "FS-20260303-0001"  # the same day counter as every ticket
    assert (tk.channel, tk.chat_id, tk.reporter_name) == ("offline", "", "张大妈")
    assert tk.reporter_user_id == f"offline:{await person_of(flow, WORKER3)}:{tk.number}"
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "社岭"
    assert tk.state == S.ASSIGNED and tk.assignee_id == await person_of(flow, WORKER3)
    assert tk.ack_due_at is not None and tk.resolve_due_at is not None
    assert tk.escalation_at is not None and tk.text == "楼道里的灯坏了好几天"
    evs = await events(flow.tg, tk.id)
    assert [(e.kind, e.to_state, e.actor_name) for e in evs] == [
        ("transition", "reported", "张大妈"), ("transition", "assigned", "system"),
        ("remark", None, NAMES[WORKER3])]
    assert evs[-1].note == f"代报：{NAMES[WORKER3]}当面登记" and evs[-1].actor_role == "worker"
    assert await contacts(flow) == [(tk.id, "张大妈", PHONE, "offline")]
    card, _ = flow.last(WORKER3, "【代报工单】")
    assert card.text.startswith(f"【代报工单】{tk.number}") and "报事人：张大妈" in card.text
    assert "接单" in buttons(card)

    # the worker works it as any ticket; nobody can rate it in chat, so it waits for the
    # sweeper's auto-close
    await flow.press(WORKER3, WORKER3, "接单", "【代报工单】")
    await flow.deliver()
    assert await say(flow, WORKER3, f"办结 {tk.number} 灯已换好") \
        == f"已办结：{tk.number}。报事人无法在线确认，3 天后自动结案。"
    [tk] = await offline(flow)
    assert tk.state == S.RESOLVED
    flow.tg.clock.advance(days=flow.tg.app.settings.confirm_days, hours=1)
    assert await sweeper.sweep_once(flow.tg.app.deps) == 1
    await flow.deliver()
    [tk] = await offline(flow)
    assert tk.state == S.CLOSED
    async with flow.tg.app.deps.sm() as s:
        stray = (await s.scalars(select(Outbox).where(
            (Outbox.channel == "offline") | (Outbox.chat_id == "")))).all()
    assert stray == []


async def test_a_place_named_wins_over_the_filers_grid(staffed: Flow) -> None:
    flow = staffed
    answer = await say(flow, WORKER3, f"代报 李大爷 {PHONE} 南关农贸市场门口垃圾堆了三天")
    [tk] = await offline(flow)
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "南关"
    assert answer == f"已代报，工单号 {tk.number}，已派给南关网格员{NAMES[WORKER]}。"
    assert tk.assignee_id == await person_of(flow, WORKER)
    card, _ = flow.last(WORKER, "【代报工单】")
    assert "报事人：李大爷" in card.text and "地点：南关农贸市场" in card.text
    assert tk.category == "环境卫生"


async def test_a_grid_whose_worker_is_not_connected_goes_up_the_ladder(flow: Flow) -> None:
    flow = await onboard(flow, WORKER, COORD)  # 社岭's workers have not joined
    answer = await say(flow, WORKER, f"代报 赵阿姨 {PHONE} 社岭小区三号楼下水道堵了")
    [tk] = await offline(flow)
    assert answer == (f"已代报，工单号 {tk.number}，已转到社岭网格；该网格的网格员还没接入，"
                      "已请社区工作人员跟进。")
    assert tk.state == S.ASSIGNED
    note, _ = flow.last(COORD, tk.number)
    assert note.text == f"【待分派】社岭网格没有绑定网格员，工单 {tk.number} 无人接收。"


async def test_a_coordinator_without_a_place_puts_it_in_the_queue(staffed: Flow) -> None:
    flow = staffed
    answer = await say(flow, COORD, "代报 楼下有人乱扔垃圾")
    [tk] = await offline(flow)
    assert answer == (f"已代报，工单号 {tk.number}。没能确定属于哪个网格，已转社区工作人员分派。"
                      f"\n{NO_PHONE}")
    assert tk.state == S.REPORTED and tk.unrouted and tk.grid_id is None
    assert tk.escalation_at is None and tk.reporter_name == "居民"
    assert flow.tg.app.deps.county.index.communities["FN"][0] == tk.community_id
    assert await contacts(flow) == []  # neither name nor phone: nothing to call back
    note, _ = flow.last(COORD, "【待分派】")
    assert tk.number in note.text
    await flow.press(COORD, COORD, "府南·南关", tk.number)
    await flow.deliver()
    [tk] = await offline(flow)
    assert tk.state == S.ASSIGNED and tk.assignee_id == await person_of(flow, WORKER)
    assert flow.last(WORKER, "【新工单】")[0].text.startswith(f"【新工单】{tk.number}")


async def test_the_centre_files_anywhere(staffed: Flow) -> None:
    flow = await onboard(staffed, CENTRE)
    answer = await say(flow, CENTRE,
                       f"代报 赵阿姨 {LANDLINE[:4]}-{LANDLINE[4:]} 社岭小区三号楼下水道堵了")
    [tk] = await offline(flow)
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "社岭"
    assert answer == f"已代报，工单号 {tk.number}，已派给社岭网格员{NAMES[WORKER3]}。"
    assert await contacts(flow) == [(tk.id, "赵阿姨", LANDLINE, "offline")]


# --------------------------------------------------------------------------- refusals

async def test_a_resident_may_not_file_for_others(staffed: Flow) -> None:
    flow = staffed
    answer = await say(flow, RESIDENT, f"代报 张大妈 {PHONE} 南关村口路灯坏了")
    assert answer == ("“代报”是工作人员替居民登记问题用的。您要反映问题，请直接发送“报事”加问题，"
                      "例如：报事 南关村口路灯坏了。")
    assert await tickets(flow.tg) == []


async def test_in_a_group_it_is_refused_without_the_phone(staffed: Flow) -> None:
    flow = staffed
    await flow.say(WORKER, f"代报 张大妈 {PHONE} 南关村口路灯坏了", chat=GROUP)
    await flow.deliver()
    assert [plain(x) for x in flow.texts(GROUP)] == [
        "代报会带上居民的姓名和电话，不能发在群里：请撤回这条消息，改为私聊我发送。这条没有登记。"]
    assert await tickets(flow.tg) == []
    assert await contacts(flow) == []


async def test_no_problem_or_two_phones_is_refused(staffed: Flow) -> None:
    flow = staffed
    assert await say(flow, WORKER, f"代报 张大妈 {PHONE}") == USAGE
    assert await say(flow, WORKER, "代报") == USAGE
    assert await say(flow, WORKER, f"代报 张大妈 {PHONE} 儿子 13800000001 灯坏了") \
        == "一次只能留一个联系电话，请删去多余的号码再发。这条没有登记。"
    assert await tickets(flow.tg) == []


# --------------------------------------------------------------------------- photos

async def test_photos_with_the_filing_and_right_after_it(staffed: Flow) -> None:
    flow = staffed
    await flow.say(WORKER, caption=f"代报 张大妈 {PHONE} 楼道灯坏了", photo_file_id="AgADlamp")
    await flow.deliver()
    [tk] = await offline(flow)
    assert await attached(flow, tk.id) == ["AgADlamp"]
    card, _ = flow.last(WORKER, "【代报工单】")
    assert card.photo and "接单" in buttons(card)  # the photo travels with the card
    assert await say(flow, WORKER, photo_file_id="AgADlamp2") == f"已补充到代报工单 {tk.number}。"
    assert await attached(flow, tk.id) == ["AgADlamp", "AgADlamp2"]
    # later, a bare photo is what it always was: not this ticket's
    flow.tg.clock.advance(minutes=3)
    assert "您是网格工作人员" in await say(flow, WORKER, photo_file_id="AgADother")
    assert await attached(flow, tk.id) == ["AgADlamp", "AgADlamp2"]
    assert len(await tickets(flow.tg)) == 1


async def test_a_redelivered_filing_files_once(staffed: Flow) -> None:
    flow = staffed
    update = make_message_update(9001, WORKER, "private", WORKER, NAMES[WORKER],
                                 text=f"代报 张大妈 {PHONE} 楼道灯坏了", bot=flow.bot)
    await flow.tg.feed(update)
    await flow.tg.feed(update)
    await flow.deliver()
    assert len(await offline(flow)) == 1 and len(await contacts(flow)) == 1
    assert sum(x.startswith("已代报") for x in flow.texts(WORKER)) == 1


# --------------------------------------------------------------------------- the phone

async def test_the_phone_reaches_the_call_back_sheet_and_nowhere_else(
        staffed: Flow, caplog: pytest.LogCaptureFixture) -> None:
    flow = await onboard(staffed, CENTRE)
    caplog.set_level(logging.INFO)  # the database driver's DEBUG lines carry every value
    for ours in ("bot", "handlers"):
        caplog.set_level(logging.DEBUG, logger=ours)
    await say(flow, WORKER, f"代报 张大妈 {PHONE} 南关农贸市场门口垃圾堆了三天，电话 {PHONE}")
    await say(flow, WORKER, photo_file_id="AgADpile")
    [tk] = await offline(flow)
    await flow.press(WORKER, WORKER, "接单", "【代报工单】")
    await flow.deliver()
    await say(flow, WORKER, f"办结 {tk.number} 已清运")
    await say(flow, WORKER, f"代报 李大爷 {PHONE} 南关村口路灯坏了", chat=GROUP)  # refused

    week = Week.of(flow.tg.clock().astimezone(SHANGHAI).date())
    async with flow.tg.app.deps.sm() as s, s.begin():
        planned = await plan_week(s, week, Rules(QUOTA, 12, SHANGHAI), flow.tg.clock())
    assert [c.ticket_id for c in planned.calls if c.ticket_id] == [tk.id]
    async with flow.tg.app.deps.sm() as s:
        [line] = [x for x in await lines(s, week) if x.ticket == tk.number]
    assert (line.name, line.phone, line.address) == ("张大妈", PHONE, "南关农贸市场")

    assert any(PHONE in r for r in await rows_of(flow, "resident_contacts"))
    for table in ("tickets", "ticket_events", "outbox", "inbound_log", "attachments",
                  "pending_inputs", "sent_messages"):
        rows = await rows_of(flow, table)
        assert rows or table in ("pending_inputs", "sent_messages"), table
        assert not [r for r in rows if PHONE in r], table
    everything = [str(req) for req in flow.bot.requests]
    assert everything and not [r for r in everything if PHONE in r]
    assert not [r.getMessage() for r in caplog.records if PHONE in r.getMessage()]


# --------------------------------------------------------------------------- PostgreSQL

async def test_filings_and_reports_share_the_numbers_on_postgresql(clock: FakeClock) -> None:
    """Two instances at once: 代报 and a resident's report draw from one day counter, and a
    filing delivered to both instances files once."""
    async with fresh_database("offline") as url:
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        a = await build_app(settings, senders={}, clock=clock)
        b = await build_app(settings, senders={}, clock=clock)
        try:
            async with a.deps.sm() as s, s.begin():
                code = (await create_invite(s, StaffRole.WORKER, grid="FN-02", community=None,
                                            now=clock(), ttl_days=7)).code
            await a.core.on_start(Ctx("telegram", "501", "郑波", "501", ChatKind.PRIVATE, "1"),
                                  code)

            def said(i: int, words: str, sender: str = "501") -> Inbound:
                return Inbound(channel="telegram", external_id=f"{sender}:{i}", chat_id=sender,
                               chat_kind=ChatKind.PRIVATE, sender_id=sender,
                               sender_name="郑波", text=words, message_id=str(i))

            first = said(2, f"代报 张大妈 {PHONE} 楼道灯坏了")
            done = await asyncio.gather(
                a.core.on_message(first), b.core.on_message(first),
                b.core.on_message(said(3, "代报 李大爷 南关农贸市场门口垃圾没人清")),
                a.core.on_message(said(4, "报事 南关村口路灯坏了", sender="700")))
            async with a.deps.sm() as s:
                made = (await s.execute(select(Ticket.number, Ticket.channel, Ticket.state)
                                        .order_by(Ticket.id))).all()
                kept = (await s.execute(select(ResidentContact.name,
                                               ResidentContact.mobile))).all()
        finally:
            await a.close()
            await b.close()
    assert sorted(d.kind for d in done) == ["duplicate", "offline", "offline", "report"]
    assert sorted(n for n, _c, _s in made) == [f"FS-20260303-000{i}" for i in (1, 2, 3)]
    assert sorted(c for _n, c, _s in made) == ["offline", "offline", "telegram"]
    assert {st for _n, _c, st in made} == {S.ASSIGNED.value}
    assert sorted(kept) == [("张大妈", PHONE), ("李大爷", "")]
