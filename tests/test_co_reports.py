"""Co-reports (附议): a neighbour's report of a problem already open at the same place follows
that ticket; its reporter hears its progress and rates it; managers merge (合并) and split (拆分)
by hand, and are refused with a reason outside their rights."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.intake.coreports import Lead, lead_for, metres, wgs84
from models.enums import TicketState as S
from models.tickets import NewTicket, Outbox, Ticket
from models.wecom import ResidentContact
from tests.test_coordinator_words import OTHER_COORD, refused, say
from tests.test_coordinator_words import crew as crew  # fixtures
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    LEADER,
    NEIGHBOUR,
    REPORT,
    RESIDENT,
    WORKER,
    WORKER3,
    Flow,
    buttons,
    events,
    plain,
    report,
    resolve,
    ticket,
    tickets,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

SAID = "南关农贸市场门口的垃圾还是没人管，苍蝇到处飞"
SAME = f"报事 {SAID}"



async def co_report(flow: Flow, lead: Ticket, text: str = SAME, user: int = NEIGHBOUR
                    ) -> Ticket:
    before = len(flow.texts(WORKER))
    child = await report(flow, text, user=user)
    assert (child.state, child.merged_into_id) == (S.MERGED, lead.id)
    assert child.assignee_id is None and child.escalation_at is None
    assert not [x for x in flow.texts(WORKER)[before:] if "【新工单】" in x]  # no second card
    return child


async def test_a_neighbour_reporting_the_same_problem_follows_the_open_ticket(
        staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    child = await co_report(flow, lead)
    told = plain(flow.texts(GROUP)[-1])
    assert f"同一处的这个问题已登记为工单 {lead.number}，您的反映已一并记下" in told
    assert child.number not in told  # they follow one number, not two
    assert flow.texts(WORKER)[-1] == (f"工单 {lead.number} 又有居民反映同一问题（共 2 人反映）："
                                      f"{SAID}")
    kinds = [(e.kind, e.note) for e in await events(flow.tg, lead.id)]
    assert ("co_report", f"{child.number} {SAID}") in kinds
    assert [(e.from_state, e.to_state) for e in await events(flow.tg, child.id)] == [
        (None, S.REPORTED), (S.REPORTED, S.MERGED)]


async def test_co_reporters_hear_the_work_and_their_unsatisfied_reopens_it(
        staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    await flow.say(NEIGHBOUR, "/start")  # the neighbour can be written to privately
    await flow.deliver()
    await co_report(flow, lead)
    await flow.press(WORKER, WORKER, "接单", lead.number)
    await flow.deliver()
    assert f"您的工单 {lead.number} 已由网格员郑波接单。" in plain(flow.texts(NEIGHBOUR)[-1])
    await resolve(flow, lead, "已清运")
    req, msg = flow.last(NEIGHBOUR, "请确认并评价")
    assert f"工单 {lead.number} 已办结：已清运" in plain(flow.texts(NEIGHBOUR)[-1])
    answer = await flow.tap(NEIGHBOUR, buttons(req)["不满意"], NEIGHBOUR, msg.message_id)
    assert answer.text == f"收到，工单 {lead.number} 已重新派单处理。"
    await flow.deliver()
    again = await ticket(flow.tg, lead.number)
    assert again.state == S.ASSIGNED  # reopened and back with the worker
    reopened = [e for e in await events(flow.tg, lead.id) if e.to_state == S.REOPENED]
    assert reopened and reopened[-1].actor_role == "resident" \
        and reopened[-1].note.startswith("unsatisfied（")
    assert any("居民不满意" in x for x in flow.texts(LEADER))


async def test_a_co_reporter_rates_in_words_without_a_number_and_only_once(
        staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    child = await co_report(flow, lead)
    assert await say(flow, NEIGHBOUR, "满意") == "您现在没有等待评价的工单。有新问题请直接发送。"
    await flow.press(WORKER, WORKER, "接单", lead.number)
    await resolve(flow, lead, "已清运")
    assert await say(flow, NEIGHBOUR, "满意") == f"感谢您对工单 {lead.number} 的评价！"
    assert (await ticket(flow.tg, child.number)).satisfaction == "satisfied"
    assert (await ticket(flow.tg, lead.number)).state == S.RESOLVED  # the reporter's to close
    assert await say(flow, NEIGHBOUR, f"不满意 {lead.number}") == (
        f"您已评价过工单 {lead.number}，谢谢！")
    # the first reporter's verdict is still theirs to give
    assert await say(flow, RESIDENT, "满意") == f"感谢评价！工单 {lead.number} 已结案。"


async def test_a_co_reporter_unsatisfied_after_closing_reaches_the_grid_leader(
        staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    child = await co_report(flow, lead)
    await flow.press(WORKER, WORKER, "接单", lead.number)
    await resolve(flow, lead, "已清运")
    assert await say(flow, RESIDENT, "满意") == f"感谢评价！工单 {lead.number} 已结案。"
    answer = await say(flow, NEIGHBOUR, f"不满意 {lead.number} 门口还是脏")
    assert answer == f"已记下您的意见，会请工作人员跟进工单 {lead.number}。"
    assert (await ticket(flow.tg, lead.number)).state == S.CLOSED  # only a call-back reopens
    assert (await ticket(flow.tg, child.number)).satisfaction == "unsatisfied"
    assert flow.texts(LEADER)[-1] == (f"【督办】工单 {lead.number} 已结案，但一位附议的居民李大爷"
                                      "不满意，请跟进。")


async def test_the_co_reporter_asks_after_the_number_they_were_given(staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    await co_report(flow, lead)
    answer = await say(flow, NEIGHBOUR, lead.number)
    assert lead.number in answer and "只能查询" not in answer
    mine = await say(flow, NEIGHBOUR, "我的工单")
    assert lead.number in mine


async def test_what_is_not_linked(staffed: Flow) -> None:
    flow = staffed
    lead = await report(flow)
    # another category at the same place; the same person again; 其他; another place; the
    # same category at the same place but another problem (posters, not the rubbish)
    for text, user in (("报事 南关农贸市场门口路灯坏了，晚上很黑", NEIGHBOUR),
                       ("报事 南关农贸市场门口垃圾桶也满了", RESIDENT),
                       ("报事 南关农贸市场门口墙上贴满了小广告", NEIGHBOUR),
                       ("报事 南关农贸市场门口有人问个事", NEIGHBOUR),
                       ("报事 南关村口垃圾没人清", NEIGHBOUR)):
        tk = await report(flow, text, user=user)
        assert tk.merged_into_id is None and tk.state != S.MERGED, text
    assert (await ticket(flow.tg, lead.number)).state == S.ASSIGNED


async def test_a_report_arriving_in_the_same_batch_follows_its_neighbour(
        staffed: Flow) -> None:
    flow = staffed
    import asyncio

    await asyncio.gather(flow.say(RESIDENT, REPORT, chat=GROUP),
                         flow.say(NEIGHBOUR, SAME, chat=GROUP))
    await flow.deliver()
    made = sorted(await tickets(flow.tg), key=lambda t: t.id)
    assert len(made) == 2
    lead, child = made
    assert lead.merged_into_id is None and lead.state == S.ASSIGNED
    assert (child.state, child.merged_into_id) == (S.MERGED, lead.id)
    assert len([x for x in flow.texts(WORKER) if "【新工单】" in x]) == 1


def _lead(lat: float, lon: float, datum: str = "wgs84", place: str = "") -> Lead:
    return Lead(1, "FS-1", 7, "环境卫生", place, wgs84(lat, lon, datum), ("telegram", "1"),
                frozenset({"垃圾"}))


def _new(lat: float | None, lon: float | None, datum: str | None = "wgs84",
         category: str = "环境卫生", place_text: str = "") -> NewTicket:
    return NewTicket(number="FS-2", category=category, text="垃圾", route_status="routed",
                     channel="telegram", chat_id="9", chat_kind="group", reporter_user_id="2",
                     lat=lat, lon=lon, datum=datum, grid_id=7, place_text=place_text)


def test_points_within_the_radius_link_after_converting_the_datum() -> None:
    here = (35.9700, 111.8400)
    lead = _lead(*here)
    north_100m = here[0] + 100 / 111_195
    assert 99 < metres(here, (north_100m, here[1])) < 101
    assert lead_for(_new(north_100m, here[1]), [lead], 150) is lead
    assert lead_for(_new(here[0] + 300 / 111_195, here[1]), [lead], 150) is None
    # the same spot in GCJ-02 (as WeChat sends it) is a few hundred metres off in raw degrees
    from bot.routing.datum import wgs84_to_gcj02
    g = wgs84_to_gcj02(*here)
    assert metres(here, g) > 150
    assert lead_for(_new(*g, datum="gcj02"), [lead], 150) is lead
    assert lead_for(_new(north_100m, here[1], category="其他"), [_lead(*here)], 150) is None
    assert lead_for(_new(None, None, place_text="南关农贸市场"),
                    [_lead(*here, place="南关农贸市场")], 150) is not None
    # the same category at the same place, but another problem: 臭 is not 垃圾
    other = _new(None, None, place_text="南关农贸市场")
    other.text = "这里好臭"
    assert lead_for(other, [_lead(*here, place="南关农贸市场")], 150) is None


# ------------------------------------------------------------------------- 合并 / 拆分

async def test_merge_by_hand_then_split_back(crew: Flow) -> None:
    flow = crew
    lead = await report(flow)
    other = await report(flow, "报事 南关村口垃圾没人清，堆在路边", user=NEIGHBOUR)
    assert other.merged_into_id is None
    # as people type it: no spaces, the short numbers
    answer = await say(flow, COORD, f"合并 {other.number[-1]}到{lead.number[-1]}")
    assert answer == (f"已将工单 {other.number} 并入 {lead.number}，现共 2 人反映，"
                      "进展会一并告诉他们。")
    merged = await ticket(flow.tg, other.number)
    assert (merged.state, merged.merged_into_id, merged.escalation_at) == (
        S.MERGED, lead.id, None)
    assert any(f"您反映的问题（工单 {other.number}）与工单 {lead.number} 是同一件事" in plain(x)
               for x in flow.texts(GROUP))
    ev = (await events(flow.tg, other.id))[-1]
    assert (ev.kind, ev.to_state, ev.actor_role, ev.note) == (
        "transition", S.MERGED, "coordinator", lead.number)

    answer = await say(flow, COORD, f"拆分 {other.number}")
    assert answer == f"已拆分：工单 {other.number} 单独办理，已派给南关网格。"
    back = await ticket(flow.tg, other.number)
    assert (back.state, back.merged_into_id) == (S.ASSIGNED, None)
    assert back.ack_due_at is not None and back.escalation_at is not None
    assert flow.texts(WORKER)[-1].startswith(f"【新工单】{other.number}")
    assert any(f"您反映的问题已单独立为工单 {other.number}" in plain(x) for x in flow.texts(GROUP))


async def test_merging_a_ticket_takes_its_followers_along(crew: Flow) -> None:
    flow = crew
    first = await report(flow)
    child = await co_report(flow, first)
    second = await report(flow, "报事 南关村口垃圾没人清，堆在路边", user=WORKER3)
    await say(flow, CENTRE, f"合并 {first.number} 到 {second.number}")
    assert (await ticket(flow.tg, child.number)).merged_into_id == second.id
    assert (await ticket(flow.tg, first.number)).merged_into_id == second.id


async def test_merge_and_split_are_refused_with_a_reason(crew: Flow) -> None:
    flow = crew
    lead = await report(flow)
    other = await report(flow, "报事 南关村口垃圾没人清，堆在路边", user=NEIGHBOUR)
    no_rights = "合并和拆分由工单所在社区的工作人员或县指挥中心操作。未作改动。"
    assert await refused(flow, RESIDENT, f"合并 {other.number} 到 {lead.number}", other) \
        == no_rights
    assert await refused(flow, WORKER, f"合并 {other.number} 到 {lead.number}", other) \
        == no_rights
    assert await refused(flow, OTHER_COORD, f"合并 {other.number} 到 {lead.number}", other) \
        == no_rights
    assert await refused(flow, COORD, f"合并 {other.number} 到 {other.number}", other) \
        == "两个工单号是同一张工单，未作改动。"
    assert await refused(flow, COORD, f"合并 {other.number} 到 南关", other) == (
        "请写上两个工单号，例如：合并 FS-20261130-0007 到 FS-20261130-0003（把 0007 并入 0003）")
    assert await refused(flow, COORD, f"拆分 {other.number}", other) == (
        f"工单 {other.number} 没有并入别的工单，不用拆分。")
    await say(flow, COORD, f"不予受理 {lead.number} 不属于本社区事务")
    assert await refused(flow, COORD, f"合并 {other.number} 到 {lead.number}", other) == (
        f"工单 {lead.number} 已不予受理，不能合并。未作改动。")
    # a resident's 合并 without numbers is just words, not a refusal
    await flow.say(RESIDENT, "合并", chat=GROUP)
    await flow.deliver()
    assert not any("两个工单号" in x for x in flow.texts(GROUP))


async def test_a_phone_typed_into_a_report_is_kept_for_the_centre_only(staffed: Flow) -> None:
    """Workers and groups read the report with the number hidden; the number is kept in
    resident_contacts for the command centre's call-backs."""
    flow = staffed
    lead = await report(flow)
    child = await report(flow, "报事 南关农贸市场门口垃圾没人清，有事打我电话 139 1234 5678",
                         user=NEIGHBOUR)
    assert child.text == "南关农贸市场门口垃圾没人清，有事打我电话（号码已隐藏）"
    assert child.merged_into_id == lead.id  # the number does not stop it following
    async with flow.tg.app.deps.sm() as s:
        sent = (await s.scalars(select(Outbox))).all()
        contact = await s.scalar(select(ResidentContact).where(
            ResidentContact.ticket_id == child.id))
    assert not any("5678" in str(r.payload) for r in sent)
    assert "号码已隐藏" in flow.texts(WORKER)[-1]
    assert contact is not None and (contact.mobile, contact.source, contact.name) == (
        "13912345678", "chat", "李大爷")


def test_finding_an_open_ticket_at_the_place_reads_an_index_not_the_table(
        tmp_path: Path) -> None:
    """Per intake batch, under the write lock: by grid and place, or grid and latitude."""
    from sqlalchemy import create_engine, event

    from bot.intake.coreports import _NEAR, _at_places
    from models.db import upgrade_sync

    upgrade_sync(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    seen: list[tuple[str, object]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, st, params, *_a: seen.append((st, params)))
    with engine.connect() as c:
        for q, extra, index in (
                (_at_places([(1, "南关村"), (2, "东关")]), {}, "ix_tickets_grid_place"),
                (_NEAR, {"grids": [1, 2], "lat_lo": 35.0, "lat_hi": 36.0, "lon_lo": 111.0,
                         "lon_hi": 112.0}, "ix_tickets_grid_lat")):
            c.execute(q, {"categories": ["环境卫生"], **extra}).all()
            statement, params = seen[-1]
            plan = " ".join(r[3] for r in c.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params).all())  # type: ignore[arg-type]
            assert f"USING INDEX {index}" in plan, plan
    engine.dispose()
