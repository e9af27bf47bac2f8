"""转办 to partner units: partners.csv validated and imported, a ticket handed over in words,
the unit's contact acting with the worker's words while the worker hears each step, and the
rates grouped by unit (hand-checked)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.files import CountyFileError, load_county_dir
from bot.county.store import import_county
from bot.people.partners import create_partner_invite
from bot.reports.period import month
from bot.reports.table import build_report
from bot.tickets.partners import name_unit
from models import db
from models.enums import TicketState as S
from models.partners import Partner, PartnerArea, PartnerContact
from models.people import Person
from models.tickets import Ticket
from tests.test_coordinator_words import refused
from tests.test_telegram_flow import (
    COORD,
    GROUP,
    LEADER,
    PHONE,
    RESIDENT,
    WORKER,
    Flow,
    events,
    report,
    ticket,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

SAMPLE = Path(__file__).resolve().parent.parent / "config" / "sample"
HEADER = "code,name,kind,serves,aliases,contact,phone\n"
PARTNER, COMMITTEE = 601, 602  # 宏达物业's 张经理, 锦绣花园业委会's 刘主任
HONGDA = "浮山县宏达物业有限公司"


# ---------------------------------------------------------------------------------- import

@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    d = tmp_path / "county"
    shutil.copytree(SAMPLE, d)
    return d


def problems(d: Path, rows: str) -> list[str]:
    (d / "partners.csv").write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(d)
    return [str(p) for p in e.value.problems]


def test_the_sample_partners_read_with_their_areas() -> None:
    rows = {p.code: p for p in load_county_dir(SAMPLE).partners}
    assert set(rows) == {"WY-HD", "YWH-JX", "ZJJ"}
    assert (rows["WY-HD"].kind, rows["WY-HD"].grids) == ("property", ("FN-02", "FN-03"))
    assert (rows["YWH-JX"].kind, rows["YWH-JX"].places) == ("committee", ("锦绣花园",))
    assert (rows["ZJJ"].kind, rows["ZJJ"].county) == ("department", True)


def test_each_bad_row_is_named_with_its_reason(county_dir: Path) -> None:
    found = problems(county_dir, (
        "A1,甲物业,物业公司,FN-02|火星小区,,,\n"  # row 2: an unknown place
        "A1,乙物业,物业,FN-03,,,\n"  # row 3: the code again
        "B1,丙单位,施工队,全县,,,\n"  # row 4: no such kind
        "C1,丁物业,物业公司,锦绣小区,,钱经理,1390357\n"  # row 5: a short mobile
        "D1,甲物业,物业公司,南关网格,,,\n"  # row 6: the name again
        "E1,戊物业,物业公司,,,,\n"))  # row 7: serves nothing
    assert found == [
        "partners.csv 第 2 行：服务范围里的“火星小区”找不到：不是网格编号、网格名（…网格），"
        "也不是地名（见 grids.yaml 和 places.csv）",
        "partners.csv 第 3 行：编号 A1 重复了（第 2 行已用过）",
        "partners.csv 第 4 行：类型“施工队”不认识：只能是物业公司、业委会或部门",
        "partners.csv 第 5 行：电话格式不对，只有 7 位，手机号应为 11 位",
        "partners.csv 第 6 行：单位名称“甲物业”重复了（第 2 行已用过）",
        "partners.csv 第 7 行：没有填服务范围：写网格编号、地名或“全县”",
    ]
    assert not any("1390357" in p for p in found)  # the number itself is never repeated


def test_grid_names_and_place_aliases_are_understood(county_dir: Path) -> None:
    (county_dir / "partners.csv").write_text(
        "编号,名称,类型,服务范围\nA1,甲物业,物业公司,南关网格、锦绣小区\n", encoding="utf-8")
    (row,) = load_county_dir(county_dir).partners
    assert (row.grids, row.places, row.county) == (("FN-02",), ("锦绣花园",), False)


def test_a_broken_grids_file_is_not_echoed_as_unknown_areas(county_dir: Path) -> None:
    (county_dir / "grids.yaml").write_text("name: x\ncommunities: [\n", encoding="utf-8")
    (county_dir / "partners.csv").write_text(HEADER + "A1,甲物业,物业公司,FN-02,,,\n",
                                             encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(county_dir)
    assert not any("partners.csv" in str(p) for p in e.value.problems)


@pytest.fixture
async def sm(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'county.db'}"
    await db.upgrade(url)
    engine = db.make_engine(url)
    yield db.make_sessionmaker(engine)
    await engine.dispose()


async def test_import_is_idempotent_and_deactivates_what_left(
        sm: async_sessionmaker[AsyncSession], county_dir: Path) -> None:
    async with sm() as s, s.begin():
        first = await import_county(s, load_county_dir(county_dir))
    assert (first.tables["partners"].created, first.tables["partner areas"].created,
            first.tables["partner contacts"].created) == (3, 4, 3)
    async with sm() as s, s.begin():
        again = await import_county(s, load_county_dir(county_dir))
    assert not again.changed
    (county_dir / "partners.csv").write_text(
        HEADER + "WY-HD,浮山县宏达物业有限公司,物业公司,FN-02,宏达物业,张经理,17000009001\n",
        encoding="utf-8")
    async with sm() as s, s.begin():
        third = await import_county(s, load_county_dir(county_dir))
        active = (await s.scalars(select(Partner.code).where(Partner.active.is_(True)))).all()
        areas = await s.scalar(select(func.count()).select_from(PartnerArea)
                               .where(PartnerArea.active.is_(True)))
        contacts = await s.scalar(select(func.count()).select_from(PartnerContact)
                                  .where(PartnerContact.active.is_(True)))
        zhang = await s.scalar(select(Person).where(Person.phone == "17000009001"))
    assert third.changed and third.tables["partners"].deactivated == 2
    assert (list(active), areas, contacts) == (["WY-HD"], 1, 1)
    assert zhang is not None and zhang.name == "张经理"


# ------------------------------------------------------------------------------- 转办 in chat

def test_units_are_named_as_people_type_them() -> None:
    units = [Partner(id=1, code="WY-HD", name=HONGDA, aliases=["宏达物业"]),
             Partner(id=2, code="ZJJ", name="县住建局", aliases=[]),
             Partner(id=3, code="WY-HX", name="宏兴物业", aliases=[])]
    def one(text: str) -> tuple[str, str]:
        named = name_unit(units, text)
        assert len(named.partners) == 1, (text, named)
        return named.partners[0].code, named.note
    assert one("wy-hd") == ("WY-HD", "")
    assert one("宏达物业 请尽快清运") == ("WY-HD", "请尽快清运")
    assert one("宏达物业请尽快清运") == ("WY-HD", "请尽快清运")  # the note glued on
    assert one("宏達物業") == ("WY-HD", "")  # Traditional
    assert one("宏达") == ("WY-HD", "")  # the start of a name
    assert one("住建局 路面塌陷") == ("ZJJ", "路面塌陷")  # without 县
    assert one("浮山县宏达物业") == ("WY-HD", "")
    assert len(name_unit(units, "宏").partners) == 0  # one character names nothing
    assert len(name_unit(units, "宏兴物业").partners) == 1
    assert [p.code for p in name_unit(units, "物业").partners] == []  # only the ends of names


async def bind_partner(flow: Flow, user: int, code: str) -> None:
    async with flow.tg.app.deps.sm() as s, s.begin():
        inv = await create_partner_invite(s, code, None, now=flow.tg.clock(), ttl_days=7)
    await flow.say(user, f"/start {inv.code}")
    await flow.deliver()


@pytest.fixture
async def units(staffed: Flow) -> Flow:
    await bind_partner(staffed, PARTNER, "WY-HD")
    await bind_partner(staffed, COMMITTEE, "YWH-JX")
    assert staffed.texts(PARTNER)[-1] == (
        f"绑定成功：您现在是{HONGDA}的联系人。转办给{HONGDA}的工单会发到这里，"
        "可回复：接单 工单号；进展 工单号 内容；办结 工单号 办理结果。")
    staffed.clear()
    return staffed


async def say(flow: Flow, user: int, text: str, chat: int | None = None) -> str:
    await flow.say(user, text, chat=chat)
    await flow.deliver()
    return flow.texts(chat or user)[-1]


async def test_worker_hands_over_and_the_unit_works_it_with_the_worker_told(
        units: Flow) -> None:
    flow = units
    tk = await report(flow, "报事 南关农贸市场门口垃圾堆了三天没人清运，电话13912345678")
    n = tk.number
    answer = await say(flow, WORKER, f"转办 {n} 宏达物业 市场门口垃圾请今天清运")
    assert answer == (f"已转办：{n} → {HONGDA}，已发给张经理。对方接单、进展、办结都会告诉网格员；"
                      "办理时限不变。")
    card = flow.texts(PARTNER)[-1]
    assert card.startswith(f"【转办工单】{n}\n南关网格（网格员郑波）转来，请协助办理。\n类别：")
    assert "说明：市场门口垃圾请今天清运" in card and "办结时限：" in card
    assert f"请回复：接单 {n}；进展 {n} 内容；办结 {n} 办理结果" in card
    assert not PHONE.search(card) and "张大妈" not in card  # neither the number nor the name
    handed = await ticket(flow.tg, n)
    assert handed.partner_id is not None and handed.state == S.ASSIGNED
    assert handed.resolve_due_at == tk.resolve_due_at and handed.ack_due_at == tk.ack_due_at
    ev = (await events(flow.tg, tk.id))[-1]
    assert (ev.kind, ev.actor_name, ev.note) == ("transfer_partner", "郑波",
                                                 f"{HONGDA}：市场门口垃圾请今天清运")

    assert await say(flow, PARTNER, f"接单 {n}") == (
        f"已接单：{n}。有进展请回复：进展 {n} 内容；办好后回复：办结 {n} 办理结果")
    assert flow.texts(WORKER)[-1] == f"工单 {n}：{HONGDA}张经理已接单。"
    assert f"您的工单 {n} 已由{HONGDA}接单。" in flow.texts(GROUP)[-1]
    assert await say(flow, PARTNER, f"进展 {n} 已派保洁员前往") == f"进展已记录：{n}。"
    assert flow.texts(WORKER)[-1] == f"工单 {n}：{HONGDA}张经理报进展：已派保洁员前往"
    assert (await ticket(flow.tg, n)).state == S.IN_PROGRESS
    assert await say(flow, PARTNER, f"办结 {n}") == \
        f"请在工单号后写上办理结果，例如：办结 {n} 路灯已换好"
    assert await say(flow, PARTNER, f"办结 {n} 垃圾已清运完毕") == f"已办结：{n}，等待居民确认。"
    assert flow.texts(WORKER)[-1] == \
        f"工单 {n}：{HONGDA}张经理已办结：垃圾已清运完毕。等待居民评价。"
    done = await ticket(flow.tg, n)
    assert (done.state, done.resolution_note) == (S.RESOLVED, "垃圾已清运完毕")
    steps = [(e.to_state, e.actor_person_id is not None and e.actor_name)
             for e in (await events(flow.tg, tk.id))[-3:]]
    assert steps == [(S.ACKNOWLEDGED, "张经理"), (S.IN_PROGRESS, "张经理"),
                     (S.RESOLVED, "张经理")]
    assert not any(PHONE.search(x) for x in flow.texts(PARTNER))


async def test_coordinator_hands_over_in_traditional_and_the_worker_hears(units: Flow) -> None:
    flow = units
    tk = await report(flow)
    answer = await say(flow, COORD, f"轉辦 {tk.number} 縣住建局 路面需要修補")
    # nobody from 住建局 has joined: said plainly, not claimed as sent
    assert answer == (f"已记下转办：{tk.number} → 县住建局。但该单位还没有人接入，"
                      "工单没能发给对方，请电话联系县住建局。办理时限不变。")
    assert flow.texts(WORKER)[-1] == (f"工单 {tk.number} 已由周主任转办给县住建局。对方接单、进展、"
                                      "办结都会告诉您，这张工单仍由您负责跟进。")
    # handed on again, to the 物业: its contact gets the card
    answer = await say(flow, LEADER, f"转办 {tk.number} wy-hd")
    assert answer.startswith(f"已转办：{tk.number} → {HONGDA}，已发给张经理。")
    assert flow.texts(PARTNER)[-1].startswith(f"【转办工单】{tk.number}")
    assert [e.kind for e in await events(flow.tg, tk.id)].count("transfer_partner") == 2


async def test_refusals_change_nothing(units: Flow) -> None:
    flow = units
    tk = await report(flow)
    n = tk.number
    assert await refused(flow, RESIDENT, f"转办 {n} 宏达物业", tk) == (
        "只有这张工单的网格员、网格长、社区工作人员和县指挥中心可以转办。未作改动。")
    assert await refused(flow, WORKER, f"转办 {n} 天马物业 快点", tk) == (
        f"没有找到“天马物业”这个单位。能接工单 {n} 的单位有：{HONGDA}、县住建局。")
    assert await refused(flow, WORKER, f"转办 {n} 锦绣业委会", tk) == (
        f"锦绣花园业主委员会不负责工单 {n} 所在的地方。能接工单 {n} 的单位有：{HONGDA}、"
        "县住建局。未作改动。")
    assert await refused(flow, WORKER, f"转办 {n}", tk) == \
        "请写上工单号和单位，例如：转办 7 宏达物业 楼道灯坏了请维修"
    # a unit's contact acts only on what was handed to their unit
    assert await refused(flow, PARTNER, f"接单 {n}", tk) == "抱歉，您无权处理这张工单。"
    await say(flow, WORKER, f"转办 {n} 宏达物业")
    assert await refused(flow, COMMITTEE, f"办结 {n} 好了", tk) == "抱歉，您无权处理这张工单。"
    assert await refused(flow, PARTNER, f"退回 {n} 不归我们管", tk) == "抱歉，您无权处理这张工单。"
    assert await refused(flow, WORKER, f"转办 {n} 宏达", tk) == \
        f"工单 {n} 已经转办给{HONGDA}，未作改动。"
    await say(flow, PARTNER, f"办结 {n} 已处理")
    await say(flow, RESIDENT, f"满意 {n}", chat=GROUP)
    closed = await ticket(flow.tg, n)
    assert closed.state == S.CLOSED
    assert await refused(flow, WORKER, f"转办 {n} 县住建局", closed) == \
        f"工单 {n} 现在是“已结案”，只能转办还在处理中的工单。未作改动。"


async def test_the_units_words_without_a_number_find_its_ticket(units: Flow) -> None:
    flow = units
    tk = await report(flow)
    await say(flow, WORKER, f"转办 {tk.number} 宏达物业")
    assert await say(flow, PARTNER, "接单") == (
        f"已接单：{tk.number}。有进展请回复：进展 {tk.number} 内容；办好后回复：办结 "
        f"{tk.number} 办理结果")
    assert (await ticket(flow.tg, tk.number)).state == S.ACKNOWLEDGED


# ------------------------------------------------------------------------------ the report

async def test_report_by_partner_hand_checked(units: Flow) -> None:
    """Tuesday 3 March 2026, 10:00; 接单 within 2 working hours, 办结 by Friday 18:00.
    A (宏达): 接单 at once, 办结, 满意       -> 应响应 1 按时 1; 应办结 1 按期 1; 满意 1/1
    B (宏达): nobody acts; 3 hours later    -> 应响应 1 按时 0; 办结 not yet due
    C (住建局): the worker acknowledges     -> 应响应 1 按时 1; 办结 not yet due
    D: never handed over                    -> not in the table
    宏达: 报事 2, 响应率 1/2, 按期办结率 1/1, 满意率 1/1; 住建局: 1, 1/1, —, —;
    转办合计: 3, 2/3, 1/1, 1/1."""
    flow = units
    a = await report(flow, "报事 南关农贸市场门口垃圾堆了三天没人清运")
    b = await report(flow, "报事 南关村路灯坏了好几天了")
    c = await report(flow, "报事 南关路下水道堵了，污水漫到路上")
    await report(flow, "报事 汽车站门口的井盖丢了")
    await say(flow, WORKER, f"转办 {a.number} 宏达物业")
    await say(flow, WORKER, f"转办 {b.number} 宏达物业")
    await say(flow, COORD, f"转办 {c.number} 县住建局")
    await say(flow, PARTNER, f"接单 {a.number}")
    await say(flow, PARTNER, f"办结 {a.number} 已清运")
    await say(flow, RESIDENT, f"满意 {a.number}", chat=GROUP)
    await say(flow, WORKER, f"接单 {c.number}")
    flow.tg.clock.advance(hours=3)
    engine = flow.tg.app.engine
    as_of = flow.tg.clock()
    async with engine.connect() as conn:
        built = await conn.run_sync(lambda cn: build_report(
            cn, month(2026, 3, flow.tg.app.deps.sla.tz), as_of, "partner"))
    table = built.tables["partner"]
    assert list(built.tables) == ["partner", "community", "grid", "worker"]
    at = {h: i for i, h in enumerate(table.headers)}

    def row(label: str) -> tuple[object, ...]:
        r = next(r for r in table.rows if label in r[:2])
        return tuple(r[at[h]] for h in ("报事量", "应响应", "按时响应", "响应率", "应办结",
                                        "按期办结", "按期办结率", "满意率（居民评价）"))
    assert table.headers[:3] == ["单位编号", "协同单位", "类型"]
    assert [r[:3] for r in table.rows[:-1]] == [["WY-HD", HONGDA, "物业公司"],
                                                ["ZJJ", "县住建局", "部门"]]
    assert row(HONGDA) == (2, 2, 1, 0.5, 1, 1, 1.0, 1.0)
    assert row("县住建局") == (1, 1, 1, 1.0, 0, 0, None, None)
    assert row("转办合计") == (3, 3, 2, 2 / 3, 1, 1, 1.0, 1.0)
    assert built.county.tickets == 4  # the county's own figures still count every ticket


async def test_the_ticket_column_is_empty_until_handed(units: Flow) -> None:
    tk = await report(units)
    async with units.tg.app.deps.sm() as s:
        assert await s.scalar(select(Ticket.partner_id).where(Ticket.id == tk.id)) is None


# ------------------------------------------------------------------------------ the invite

def test_cli_invite_for_a_partner_contact(tmp_path: Path) -> None:
    from tests.test_cli import invite_code, run

    db_file = tmp_path / "cli.db"
    done = run(db_file, "invite", "--partner", "wy-hd", TELEGRAM_BOT_USERNAME="fushan_grid_bot")
    assert done.returncode == 0, done.stderr
    code = invite_code(done.stdout)
    assert done.stdout.splitlines()[0].startswith(
        f"邀请码：{code} 协同单位：{HONGDA} 联系人：张经理 有效期至：")
    assert f"https://t.me/fushan_grid_bot?start={code}" in done.stdout
    unknown = run(db_file, "invite", "--partner", "NOPE")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "协同单位 NOPE：没有这个编号的协同单位（或已停用），请查看 partners.csv。未生成邀请码" \
        in unknown.stderr
    both = run(db_file, "invite", "--partner", "WY-HD", "--role", "centre")
    neither = run(db_file, "invite")
    for bad in (both, neither):
        assert bad.returncode == 2 and "二选一" in bad.stderr


async def test_a_worker_can_also_act_for_a_unit(units: Flow) -> None:
    """韩冬 works in 社岭 (FN-03) and is made a contact of 宏达物业 by name: his account stays
    his, and on a 南关 ticket handed to 宏达 he acts for the unit."""
    from tests.test_telegram_flow import WORKER3

    flow = units
    async with flow.tg.app.deps.sm() as s, s.begin():
        inv = await create_partner_invite(s, "WY-HD", "韩冬", now=flow.tg.clock(), ttl_days=7)
    assert (await say(flow, WORKER3, f"/start {inv.code}")).startswith(
        f"绑定成功：您现在是{HONGDA}的联系人。")
    async with flow.tg.app.deps.sm() as s:
        contacts = (await s.execute(
            select(Person.name, PartnerContact.active, PartnerContact.source)
            .join(PartnerContact, PartnerContact.person_id == Person.id)
            .order_by(PartnerContact.id))).all()
    # the placeholder made for the name is retired; 韩冬's own person is the contact
    assert [tuple(c) for c in contacts if c[0] == "韩冬"] == [("韩冬", False, "invite"),
                                                            ("韩冬", True, "invite")]
    tk = await report(flow)
    answer = await say(flow, WORKER, f"转办 {tk.number} 宏达物业")
    assert answer.startswith(f"已转办：{tk.number} → {HONGDA}，已发给张经理、韩冬。")
    assert await say(flow, WORKER3, f"接单 {tk.number}") == (
        f"已接单：{tk.number}。有进展请回复：进展 {tk.number} 内容；办好后回复：办结 "
        f"{tk.number} 办理结果")
    assert flow.texts(WORKER)[-1] == f"工单 {tk.number}：{HONGDA}韩冬已接单。"
