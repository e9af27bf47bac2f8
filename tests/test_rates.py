"""The three rates against a hand-computed answer, and the files made from them.

The fixture is 38 tickets (and 2 co-reports) moved through bot/tickets/lifecycle.py on a
FakeClock. Times are Shanghai local; the SLA is the default (接单 2 working hours, 办结 by
18:00 on the 3rd working day after the assignment's day, working hours 08:00-18:00).
November 2026 has no holidays; the 7/8, 14/15, 21/22, 28/29 are weekends. Every figure
asserted below is worked out by hand in the comments; none was printed by the code under
test.

Kinds of ticket (report at 09:00 on day D unless said; "ack" = 接单, "res" = 办结):
  A  ack 10:00, res D+1 09:00, rated 满意 at D+1 12:00.   resp 1h on time; res 24h on time
  B  as A, rated 基本满意.                                 resp 1h; res 24h on time
  C  escalated 11:00 (level 1), ack 12:00 (due 11:00: late), res D+1 09:00, 满意.
                                                           resp 3h late; res 24h on time
  D  ack 10:00; escalated at the 办结 deadline D+3 18:00; res D+4 10:00; auto-closed 3 days
     later with no rating.                                 resp 1h; res 97h late
  E  res straight from 已派单 at 10:30 (no ack), 满意.      resp 1.5h (the resolution); 1.5h
  F  ack 10:00, res D+1 09:00, 不满意 D+1 12:00 -> reopened and assigned again (new 接单 due
     D+1 14:00, new 办结 due D+4 18:00); ack D+1 13:00, res D+2 10:00, 满意 D+2 12:00.
                                                           resp 1h (13:00-12:00) on time;
                                                           res 49h on time; ratings 不满意+满意
  G  as F up to the reopen, then nobody acts; escalated 3 times (D+1 14:00, 18:00, 22:00).
                                                           resp due, late (the old ack is
                                                           from before the reassignment);
                                                           res due, not done; rating 不满意
  H  转派 at 10:30 from FN-01 (罗琴) to FN-02 (郑波): new 接单 due 12:30, 办结 due kept
     (D+3 18:00); 郑波 ack 11:30, res D+2 09:00, 满意.    resp 1h on time; res 48h on time
  I  退回 by 罗琴 at 10:00; the coordinator assigns it to FN-02 (郑波) at 15:00 (接单 due
     17:00; 办结 due kept D+3 18:00); ack 16:00; res D+4 09:00; auto-closed, no rating.
                                                           resp 1h on time; res 96h late
  J  退回 at 10:00 and still waiting.                      resp not counted; res due, not done
  K  不予受理 by the coordinator at 10:00.                 only 报事量 and 不予受理
  L  no grid found: into the unrouted queue.               only 报事量 and 待派单
  M  reported Mon 30 Nov 23:30, nothing else. As of 1 Dec 09:00 its 接单 deadline (1 Dec
     10:00) has not come: only 报事量.
  N  reported Sun 1 Nov 00:30 (16:30 on 31 Oct in UTC: inside November only in local time);
     接单 due Mon 2 Nov 10:00, ack 2 Nov 09:00; 办结 due 4 Nov 18:00, res 3 Nov 10:00;
     基本满意.                                            resp 32.5h on time; res 57.5h on time
  O  ack 10:00, 处理中 D+1 09:00, escalated at D+3 18:00, never resolved.
                                                           resp 1h; res due, not done

  P  (附议) two neighbours report the first FN-02 A again at 09:30; once it is closed, one
     rates it 满意 and the other 不满意. A co-report is not a ticket of its own: it adds
     nothing to any figure but 附议 (2 on FN-02, 郑波, 府南 and the county), and its
     neighbours' verdicts are not the resident's (the ticket's own rating stands).

Where (D = Mon 2 Nov unless said):
  XC-01 (王建军, 西城), D = Mon 9 Nov: A x5 (3 at 西关小区), B x2, C x2, D x1         = 10
  FN-01 (罗琴, 府南): A x4 (3 at 机械厂家属院3号楼, 市政设施), B, E x2, F, G (安全隐患),
        O, J, K, M, N                                                            = 14
  FN-02 (郑波, 府南): A x3, B x2 (南关村, 噪音扰民), C, D, H x2, I, G (安全隐患)        = 11
  unrouted: L                                                                     =  1
  outside November: an A at FN-01 机械厂家属院3号楼 on Fri 30 Oct; a report at 00:30 on
  1 Dec (local) at FN-01.                                                         =  2
Every other ticket is 环境卫生 with no place.

Hand-computed, as of 1 Dec 09:00:
  XC-01: 报事 10; 应响应 10, 按时 8 (the two C) -> 80%; responded 10, 1+1+1+1+1+1+1+3+3+1
         = 14h -> 1.4h; 应办结 10, 按期 9 (D late) -> 90%; resolved 10, 5x24+2x24+2x24+97
         = 313h -> 31.3h; 满意 7 (A5 C2), 基本满意 2, 不满意 0 -> 9/9 = 100%;
         督办: C, C, D -> 3 tickets, 3 rungs; 重办 0.
  FN-01: 报事 14; 不予受理 1 (K); 退回待派 1 (J); 应响应 11 (A4 B E2 F G O N; not J K M),
         按时 10 (all but G) -> 10/11; responded 10: 4x1 + 1 + 2x1.5 + 1 + 1 + 32.5 = 42.5h;
         应办结 12 (A4 B E2 F G O J N), 按期 9 (A4 B E2 F N) -> 75%; resolved 9:
         4x24 + 24 + 2x1.5 + 49 + 57.5 = 229.5h; 满意 7 (A4 E2 F), 基本满意 2 (B N),
         不满意 2 (F G) -> 9/11; 督办: G 3 + O 1 -> 2 tickets, 4 rungs; 重办 F, G -> 2, 2.
  FN-02: 报事 11; 应响应 11, 按时 9 (not C, G) -> 9/11; responded 10: 3+2+3+1+2+1 = 12h;
         应办结 11, 按期 8 (A3 B2 C H2) -> 8/11; resolved 10: 3x24 + 2x24 + 24 + 97 + 2x48
         + 96 = 433h; 满意 6 (A3 C H2), 基本满意 2, 不满意 1 (G) -> 8/9; 督办: C 1, D 1,
         G 3 -> 3 tickets, 5 rungs; 重办 1.
  workers: 罗琴 = FN-01 without J (13 tickets, 应办结 11, 按期 9); （未指派）= J + L
         (2 tickets, 退回待派 1, 待派单 1, 应办结 1, 按期 0).
  府南 = FN-01 + FN-02: 报事 25, 响应 19/22, 办结 17/23, 满意 17/20.
  county: 报事 36; 不予受理 1; 待派单 1; 退回待派 1; 响应 27/32; responded 30, 68.5h;
         办结 26/33; resolved 29, 313 + 229.5 + 433 = 975.5h;
         满意 20, 基本满意 6, 不满意 3 -> 26/29;
         督办 8 tickets, 12 rungs; 重办 3 tickets, 3 times.
  府南 in October: the one A -> 1 ticket, 1/1, 1/1, 1/1.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.chart import BarChart
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import Engine, Select, case, create_engine, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import prepare_database
from bot.reports.brief import Brief, build_brief, mask_phones
from bot.reports.brief_files import brief_markdown, write_brief_xlsx
from bot.reports.csvfile import write_report_csv
from bot.reports.names import load_names
from bot.reports.period import Period, month
from bot.reports.rates import By, Counts, Key, compute, roll_up, total
from bot.reports.ratings import CHAT, RatingSource
from bot.reports.scope import Scope, group_columns
from bot.reports.table import Report, build_report
from bot.reports.xlsx import write_report_xlsx
from bot.tickets.lifecycle import (
    SYSTEM,
    Actor,
    co_report,
    escalate,
    opening,
    place,
    rate_co_report,
    record,
    to_queue,
)
from bot.tickets.lifecycle import transition as move
from bot.tickets.sla import SlaConfig
from config.settings import Settings
from models.county import Community, Grid
from models.db import make_engine, make_sessionmaker
from models.enums import Role, Satisfaction
from models.enums import TicketState as S
from models.people import Person
from models.tickets import NewTicket, Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.pg import fresh_database

SH = ZoneInfo("Asia/Shanghai")
CFG = SlaConfig(tz=SH)
NOVEMBER = month(2026, 11, SH)
AS_OF = datetime(2026, 12, 1, 9, 0, tzinfo=SH).astimezone(UTC)
WORKER = Actor(roles=frozenset({Role.WORKER}), name="网格员")
COORDINATOR = Actor(roles=frozenset({Role.COORDINATOR}), name="协调员")
RESIDENT = Actor(roles=frozenset({Role.RESIDENT}), name="居民")
PHONE = "139 1234 5678"


def local(month_: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month_, day, hour, minute, tzinfo=SH).astimezone(UTC)


@dataclass
class Story:
    """Tickets told through the real lifecycle; the clock moves between steps."""

    s: AsyncSession
    clock: FakeClock
    grids: dict[str, tuple[int, int]]  # code -> grid id, community id
    people: dict[str, int]
    numbers: dict[str, list[str]] = field(default_factory=dict)  # kind -> ticket numbers
    count: int = 0

    async def report(self, kind: str, grid: str | None, worker: str | None, *,
                     place_text: str = "", category: str = "环境卫生",
                     text: str = "有问题") -> Ticket:
        self.count += 1
        gid, cid = self.grids[grid] if grid else (None, None)
        nt = NewTicket(number=f"FS-T-{self.count:04d}", category=category, text=text,
                       route_status="routed" if grid else "unknown", channel="console",
                       chat_id="group-1", chat_kind="group", reporter_user_id=f"r{self.count}",
                       reporter_name="居民", place_text=place_text, grid_id=gid,
                       community_id=cid)
        events = opening(nt, routed=grid is not None, now=self.clock(), cfg=CFG,
                         assignee_id=self.people[worker] if worker else None)
        ticket = Ticket(**nt.values())
        self.s.add(ticket)
        await self.s.flush()
        for ev in events:
            self.s.add(TicketEvent(ticket_id=ticket.id, **ev))
        self.numbers.setdefault(kind, []).append(ticket.number)
        return ticket

    async def co_report(self, lead: Ticket) -> Ticket:
        """What intake does with a neighbour's report of the same problem (附议)."""
        self.count += 1
        nt = NewTicket(number=f"FS-T-{self.count:04d}", category=lead.category, text="又坏了",
                       route_status="routed", channel="console", chat_id="group-1",
                       chat_kind="group", reporter_user_id=f"r{self.count}",
                       reporter_name="邻居", place_text=lead.place_text, grid_id=lead.grid_id,
                       community_id=lead.community_id)
        events = co_report(nt, lead.id, lead.number, self.clock())
        ticket = Ticket(**nt.values())
        self.s.add(ticket)
        await self.s.flush()
        for ev in events:
            self.s.add(TicketEvent(ticket_id=ticket.id, **ev))
        self.numbers.setdefault("P", []).append(ticket.number)
        return ticket

    def go(self, ticket: Ticket, to: S, actor: Actor, note: str = "") -> None:
        move(self.s, ticket, to, actor, now=self.clock(), cfg=CFG, note=note)

    def rate(self, ticket: Ticket, verdict: Satisfaction) -> None:
        """What actions._rate does with a resident's verdict."""
        ticket.satisfaction = verdict.value
        if verdict == Satisfaction.UNSATISFIED:
            self.go(ticket, S.REOPENED, RESIDENT, verdict.value)
            self.go(ticket, S.ASSIGNED, SYSTEM)
        else:
            self.go(ticket, S.CLOSED, RESIDENT, verdict.value)

    def escalate(self, ticket: Ticket) -> None:
        """What the sweeper does at a deadline."""
        level = escalate(ticket, self.clock(), CFG)
        record(self.s, ticket, SYSTEM, "escalate", now=self.clock(), note=f"level {level}")

    def place(self, ticket: Ticket, grid: str, worker: str, actor: Actor) -> None:
        gid, cid = self.grids[grid]
        place(self.s, ticket, grid_id=gid, community_id=cid, assignee_id=self.people[worker],
              actor=actor, now=self.clock(), cfg=CFG)

    def at(self, when: datetime) -> None:
        self.clock.now = when

    def later(self, **kw: float) -> None:
        self.clock.advance(**kw)


async def kind_a(st: Story, grid: str, worker: str, start: datetime,
                 verdict: Satisfaction = Satisfaction.SATISFIED, kind: str = "A",
                 followers: int = 0, **where: str) -> None:
    st.at(start)
    t = await st.report(kind, grid, worker, **where)
    st.later(minutes=30)
    children = [await st.co_report(t) for _ in range(followers)]
    st.later(minutes=30)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=23)
    st.go(t, S.RESOLVED, WORKER, "修好了")
    st.later(hours=3)
    st.rate(t, verdict)
    for child, said in zip(children, (Satisfaction.SATISFIED, Satisfaction.UNSATISFIED),
                           strict=False):
        st.later(minutes=10)
        rate_co_report(st.s, child, t, said.value, RESIDENT, now=st.clock())


async def kind_c(st: Story, grid: str, worker: str, start: datetime) -> None:
    st.at(start)
    t = await st.report("C", grid, worker)
    st.later(hours=2)
    st.escalate(t)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=21)
    st.go(t, S.RESOLVED, WORKER)
    st.later(hours=3)
    st.rate(t, Satisfaction.SATISFIED)


async def kind_d(st: Story, grid: str, worker: str, start: datetime) -> None:
    st.at(start)
    t = await st.report("D", grid, worker)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    assert t.resolve_due_at is not None
    st.at(t.resolve_due_at)
    st.escalate(t)
    st.later(hours=16)  # 10:00 the next day
    st.go(t, S.RESOLVED, WORKER)
    st.later(days=3)
    st.go(t, S.CLOSED, SYSTEM, "no rating")


async def kind_e(st: Story, grid: str, worker: str, start: datetime) -> None:
    st.at(start)
    t = await st.report("E", grid, worker)
    st.later(minutes=90)
    st.go(t, S.RESOLVED, WORKER)
    st.later(minutes=90)
    st.rate(t, Satisfaction.SATISFIED)


async def reopened(st: Story, kind: str, grid: str, worker: str, start: datetime,
                   **where: str) -> Ticket:
    st.at(start)
    t = await st.report(kind, grid, worker, **where)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=23)
    st.go(t, S.RESOLVED, WORKER)
    st.later(hours=3)
    st.rate(t, Satisfaction.UNSATISFIED)
    return t


async def kind_f(st: Story, grid: str, worker: str, start: datetime) -> None:
    t = await reopened(st, "F", grid, worker, start)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=21)
    st.go(t, S.RESOLVED, WORKER)
    st.later(hours=2)
    st.rate(t, Satisfaction.SATISFIED)


async def kind_g(st: Story, grid: str, worker: str, start: datetime) -> None:
    t = await reopened(st, "G", grid, worker, start, category="安全隐患")
    for _ in range(3):
        st.later(hours=2 if _ == 0 else 4)
        st.escalate(t)


async def kind_h(st: Story, start: datetime) -> None:
    st.at(start)
    t = await st.report("H", "FN-01", "罗琴")
    st.later(minutes=90)
    st.place(t, "FN-02", "郑波", WORKER)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=45, minutes=30)
    st.go(t, S.RESOLVED, WORKER)
    st.later(hours=3)
    st.rate(t, Satisfaction.SATISFIED)


async def kind_i(st: Story, start: datetime) -> None:
    st.at(start)
    t = await st.report("I", "FN-01", "罗琴")
    st.later(hours=1)
    st.go(t, S.RETURNED, WORKER, "不是我们网格的")
    st.later(hours=5)
    st.place(t, "FN-02", "郑波", COORDINATOR)
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=89)  # 09:00 on D+4
    st.go(t, S.RESOLVED, WORKER)
    st.later(days=3)
    st.go(t, S.CLOSED, SYSTEM, "no rating")


async def kind_o(st: Story, start: datetime) -> None:
    st.at(start)
    t = await st.report("O", "FN-01", "罗琴", text=f"路灯不亮了，联系我 {PHONE}")
    st.later(hours=1)
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.later(hours=23)
    st.go(t, S.IN_PROGRESS, WORKER, "等配件")
    assert t.resolve_due_at is not None
    st.at(t.resolve_due_at)
    st.escalate(t)


async def kind_n(st: Story) -> None:
    st.at(local(11, 1, 0, 30))  # a Sunday, half an hour into November
    t = await st.report("N", "FN-01", "罗琴")
    st.at(local(11, 2, 9))
    st.go(t, S.ACKNOWLEDGED, WORKER)
    st.at(local(11, 3, 10))
    st.go(t, S.RESOLVED, WORKER)
    st.later(hours=2)
    st.rate(t, Satisfaction.FAIRLY)


async def tell_the_story(st: Story) -> None:
    d2, d9 = local(11, 2, 9), local(11, 9, 9)
    for i in range(5):
        await kind_a(st, "XC-01", "王建军", d9, place_text="西关小区" if i < 3 else "")
    for _ in range(2):
        await kind_a(st, "XC-01", "王建军", d9, Satisfaction.FAIRLY, "B")
        await kind_c(st, "XC-01", "王建军", d9)
    await kind_d(st, "XC-01", "王建军", d9)

    for i in range(4):
        if i < 3:
            await kind_a(st, "FN-01", "罗琴", d2, place_text="机械厂家属院3号楼",
                         category="市政设施")
        else:
            await kind_a(st, "FN-01", "罗琴", d2)
    await kind_a(st, "FN-01", "罗琴", d2, Satisfaction.FAIRLY, "B")
    for _ in range(2):
        await kind_e(st, "FN-01", "罗琴", d2)
    await kind_f(st, "FN-01", "罗琴", d2)
    await kind_g(st, "FN-01", "罗琴", d2)
    await kind_o(st, d2)
    st.at(d2)
    j = await st.report("J", "FN-01", "罗琴")
    st.later(hours=1)
    st.go(j, S.RETURNED, WORKER, "不归我们管")
    st.at(d2)
    k = await st.report("K", "FN-01", "罗琴")
    st.later(hours=1)
    st.go(k, S.REJECTED, COORDINATOR, "不属于网格事项")
    st.at(local(11, 30, 23, 30))
    await st.report("M", "FN-01", "罗琴")
    await kind_n(st)
    for i in range(3):
        await kind_a(st, "FN-02", "郑波", d2, followers=2 if i == 0 else 0)
    for _ in range(2):
        await kind_a(st, "FN-02", "郑波", d2, Satisfaction.FAIRLY, "B",
                     place_text="南关村", category="噪音扰民")
    await kind_c(st, "FN-02", "郑波", d2)
    await kind_d(st, "FN-02", "郑波", d2)
    for _ in range(2):
        await kind_h(st, d2)
    await kind_i(st, d2)
    await kind_g(st, "FN-02", "郑波", d2)

    st.at(d2)
    lost = await st.report("L", None, None, text="这里有个坑")
    st.later(minutes=30)
    to_queue(st.s, lost, now=st.clock(), cfg=CFG, note="no place in time")

    await kind_a(st, "FN-01", "罗琴", local(10, 30, 9), kind="october",
                 place_text="机械厂家属院3号楼", category="市政设施")
    st.at(local(12, 1, 0, 30))
    await st.report("december", "FN-01", "罗琴")


async def build_story(url: str) -> dict[str, list[str]]:
    """Tell the story into the database at `url`, which holds the sample county."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            grids = {code: (gid, cid) for gid, code, cid in
                     await s.execute(select(Grid.id, Grid.code, Grid.community_id))}
            people = {name: pid for pid, name in await s.execute(select(Person.id, Person.name))}
            st = Story(s, FakeClock(), grids, people)
            await tell_the_story(st)
        return st.numbers
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def story(sample_county_db: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, dict[str, list[str]]]:
    """The sample county plus the 38 tickets above, built once for this module."""
    path = tmp_path_factory.mktemp("rates") / "rates.db"
    shutil.copyfile(sample_county_db, path)
    return path, asyncio.run(build_story(f"sqlite+aiosqlite:///{path}"))


@pytest.fixture(scope="module")
def engine(story: tuple[Path, dict[str, list[str]]]) -> Iterator[Engine]:
    e = create_engine(f"sqlite:///{story[0]}")
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def ids(engine: Engine) -> dict[str, int]:
    """Grid and community codes and people's names -> ids."""
    with engine.connect() as c:
        out = {code: gid for gid, code in c.execute(select(Grid.id, Grid.code))}
        out |= {code: cid for cid, code in c.execute(select(Community.id, Community.code))}
        out |= {name: pid for pid, name in c.execute(select(Person.id, Person.name))}
    return out


def figures(engine: Engine, period: Period = NOVEMBER, as_of: datetime = AS_OF,
            community_id: int | None = None) -> dict[Key, Counts]:
    with engine.connect() as c:
        return compute(c, Scope(period, community_id), as_of)


def check(c: Counts, *, tickets: int, ack: tuple[int, int], acked: int, ack_hours: float,
          res: tuple[int, int], resolved: int, res_hours: float, rated: tuple[int, int, int],
          escalated: tuple[int, int], reopened: tuple[int, int], rejected: int = 0,
          waiting: int = 0, returned: int = 0) -> None:
    assert (c.tickets, c.rejected, c.waiting, c.returned) == (tickets, rejected, waiting,
                                                              returned)
    assert (c.ack_on_time, c.ack_due, c.acked) == (*ack, acked)
    assert (c.resolved_on_time, c.resolve_due, c.resolved) == (*res, resolved)
    assert c.ack_seconds / 3600 == pytest.approx(ack_hours, abs=1e-3)
    assert c.resolve_seconds / 3600 == pytest.approx(res_hours, abs=1e-3)
    tally = c.tally("chat")
    assert (tally.satisfied, tally.fairly, tally.unsatisfied) == rated
    assert (c.escalated, c.escalations) == escalated
    assert (c.reopened, c.reopens) == reopened


def test_grids_match_the_hand_computed_figures(engine: Engine, ids: dict[str, int]) -> None:
    grids = roll_up(figures(engine), "grid")
    check(grids[ids["XC-01"]], tickets=10, ack=(8, 10), acked=10, ack_hours=14,
          res=(9, 10), resolved=10, res_hours=313, rated=(7, 2, 0), escalated=(3, 3),
          reopened=(0, 0))
    check(grids[ids["FN-01"]], tickets=14, rejected=1, returned=1, ack=(10, 11), acked=10,
          ack_hours=42.5, res=(9, 12), resolved=9, res_hours=229.5, rated=(7, 2, 2),
          escalated=(2, 4), reopened=(2, 2))
    check(grids[ids["FN-02"]], tickets=11, ack=(9, 11), acked=10, ack_hours=12, res=(8, 11),
          resolved=10, res_hours=433, rated=(6, 2, 1), escalated=(3, 5), reopened=(1, 1))
    check(grids[None], tickets=1, waiting=1, ack=(0, 0), acked=0, ack_hours=0, res=(0, 0),
          resolved=0, res_hours=0, rated=(0, 0, 0), escalated=(0, 0), reopened=(0, 0))
    assert set(grids) == {ids["XC-01"], ids["FN-01"], ids["FN-02"], None}
    assert {g: c.co_reports for g, c in grids.items()} == {
        ids["XC-01"]: 0, ids["FN-01"]: 0, ids["FN-02"]: 2, None: 0}
    fn02 = grids[ids["FN-02"]]
    assert fn02.response_rate == pytest.approx(9 / 11)
    assert fn02.resolve_rate == pytest.approx(8 / 11)
    assert fn02.tally("chat").rate == pytest.approx(8 / 9)
    assert fn02.avg_ack_hours == pytest.approx(1.2, abs=1e-3)
    assert fn02.avg_resolve_hours == pytest.approx(43.3, abs=1e-3)


def test_workers_carry_what_they_hold_now(engine: Engine, ids: dict[str, int]) -> None:
    workers = roll_up(figures(engine), "worker")
    check(workers[ids["罗琴"]], tickets=13, rejected=1, ack=(10, 11), acked=10,
          ack_hours=42.5, res=(9, 11), resolved=9, res_hours=229.5, rated=(7, 2, 2),
          escalated=(2, 4), reopened=(2, 2))
    # the transferred (H) and the returned-then-reassigned (I) count wholly for 郑波
    assert (workers[ids["郑波"]].tickets, workers[ids["郑波"]].co_reports) == (11, 2)
    # J (returned, waiting) and L (no grid) belong to no worker
    check(workers[None], tickets=2, waiting=1, returned=1, ack=(0, 0), acked=0, ack_hours=0,
          res=(0, 1), resolved=0, res_hours=0, rated=(0, 0, 0), escalated=(0, 0),
          reopened=(0, 0))


def test_communities_and_the_county(engine: Engine, ids: dict[str, int]) -> None:
    rows = figures(engine)
    communities = roll_up(rows, "community")
    fn = communities[ids["FN"]]
    assert (fn.tickets, fn.ack_on_time, fn.ack_due, fn.resolved_on_time, fn.resolve_due) == (
        25, 19, 22, 17, 23)
    assert fn.tally("chat").rate == pytest.approx(17 / 20)
    assert (fn.co_reports, total(rows.values()).co_reports) == (2, 2)
    check(total(rows.values()), tickets=36, rejected=1, waiting=1, returned=1, ack=(27, 32),
          acked=30, ack_hours=68.5, res=(26, 33), resolved=29, res_hours=975.5,
          rated=(20, 6, 3), escalated=(8, 12), reopened=(3, 3))


def test_periods_are_local_days(engine: Engine, ids: dict[str, int]) -> None:
    october = total(figures(engine, month(2026, 10, SH)).values())
    # the 30 Oct ticket only: N (31 Oct 16:30 UTC) is November's in Shanghai
    assert (october.tickets, october.ack_on_time, october.resolved_on_time) == (1, 1, 1)
    first_day = Period(NOVEMBER.first, NOVEMBER.first, SH)
    assert total(figures(engine, first_day).values()).tickets == 1  # N alone
    assert total(figures(engine, month(2026, 12, SH)).values()).tickets == 1


def test_a_deadline_counts_once_it_has_passed(engine: Engine, ids: dict[str, int]) -> None:
    later = datetime(2026, 12, 1, 11, 0, tzinfo=SH).astimezone(UTC)  # past M's 接单 due
    fn01 = roll_up(figures(engine, as_of=later), "grid")[ids["FN-01"]]
    assert (fn01.ack_on_time, fn01.ack_due) == (10, 12)
    assert (fn01.resolved_on_time, fn01.resolve_due) == (9, 12)  # M's 办结 is due 3 Dec


def test_a_community_scope_filters_in_sql(engine: Engine, ids: dict[str, int]) -> None:
    only = figures(engine, community_id=ids["FN"])
    assert {key[1] for key in only} == {ids["FN"]}
    assert total(only.values()).tickets == 25


def test_the_report_is_a_few_grouped_queries(engine: Engine) -> None:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        figures(engine)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # tickets; reopenings with ratings; co-reports; call-back results. Never per ticket
    assert len(seen) == 4
    assert all("GROUP BY" in s for s in seen)


def _last_verdicts(scope: Scope) -> Select[Any]:
    """A stand-in second source (call-backs will be one): each ticket's last verdict."""
    t = Ticket.__table__
    return (select(*group_columns(t),
                   *(func.count(case((t.c.satisfaction == v.value, 1))) for v in Satisfaction))
            .where(*scope.where(t)).group_by(*group_columns(t)))


def test_a_second_rating_source_is_counted_and_shown_beside(engine: Engine,
                                                            ids: dict[str, int]) -> None:
    other = RatingSource("last", "末次评价", _last_verdicts)
    with engine.connect() as c:
        rows = compute(c, Scope(NOVEMBER), AS_OF, (CHAT, other))
        report = build_report(c, NOVEMBER, AS_OF, "grid", (CHAT, other))
    fn01 = roll_up(rows, "grid")[ids["FN-01"]]
    # last verdicts in FN-01: A4 E2 F 满意, B N 基本满意, G 不满意 (F's 不满意 was overwritten)
    last = fn01.tally("last")
    assert (last.satisfied, last.fairly, last.unsatisfied) == (7, 2, 1)
    assert fn01.tally("chat").rated == 11  # unchanged beside it
    assert fn01.all_ratings().rated == 21 and fn01.all_ratings().satisfied == 14
    headers = report.tables["grid"].headers
    assert {"满意率（居民评价）", "满意率（末次评价）", "满意率（合计）"} <= set(headers)


def _report(engine: Engine, by: By) -> Report:
    with engine.connect() as c:
        return build_report(c, NOVEMBER, AS_OF, by)


def test_xlsx_reads_back_with_numbers_formats_and_a_chart(engine: Engine,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    write_report_xlsx(_report(engine, "grid"), path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["汇总", "按网格", "按社区", "按网格员", "说明"]
    ws = wb["按网格"]
    headers = [c.value for c in ws[1]]
    assert headers[:3] == ["网格编号", "网格", "所属社区"]
    col = {h: i for i, h in enumerate(headers)}
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    fn02 = rows["FN-02"]
    assert fn02[col["所属社区"]].value == "府南"
    assert fn02[col["报事量"]].value == 11
    assert fn02[col["响应率"]].value == pytest.approx(9 / 11)
    assert fn02[col["响应率"]].number_format == "0.0%"
    assert fn02[col["满意率（居民评价）"]].number_format == "0.0%"
    assert fn02[col["平均办结用时（小时）"]].value == pytest.approx(43.3, abs=1e-3)
    assert rows["全县合计"][col["报事量"]].value == 36
    assert rows[None][col["网格"]].value == "（未定网格）"  # no code to show
    assert ws.column_dimensions["B"].width >= 6
    summary = wb["汇总"]
    assert isinstance(summary, Worksheet)
    charts = summary._charts  # type: ignore[attr-defined]  # the charts openpyxl read
    assert len(charts) == 1 and isinstance(charts[0], BarChart)
    assert len(charts[0].series) == 5  # 响应率, 按期办结率, and 满意率 by each source and in all
    county = {summary.cell(r, 1).value: summary.cell(r, 2) for r in range(5, 40)}
    assert county["响应率"].value == pytest.approx(27 / 32)
    assert county["响应率"].number_format == "0.0%"
    assert county["报事量"].value == 36
    chart_rows = [summary.cell(r, 4).value for r in range(5, 9)]
    assert chart_rows == ["西关", "机械厂", "南关", "（未定网格）"]  # the county files' order


def test_csv_has_a_bom_and_percentages(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    write_report_csv(_report(engine, "worker"), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:2] == ["网格员", "所在网格"]
    by_name = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_name["郑波"]["响应率"] == "81.8%"
    assert by_name["郑波"]["所在网格"] == "FN-02"
    assert by_name["（未指派）"]["响应率"] == ""  # nothing was due: no rate, not 0%
    assert by_name["全县合计"]["报事量"] == "36"


def _brief(engine: Engine, ids: dict[str, int], code: str = "FN") -> Brief:
    with engine.connect() as c:
        return build_brief(c, load_names(c), ids[code], NOVEMBER, AS_OF)


def test_brief_repeats_overdue_rates_and_no_callback_numbers(
        engine: Engine, ids: dict[str, int], story: tuple[Path, dict[str, list[str]]]) -> None:
    numbers = story[1]
    brief = _brief(engine, ids)
    sections = {s.sheet: s for s in brief.sections}
    assert [r[:2] for r in sections["重复报事"].rows] == [["机械厂家属院3号楼", 3]]
    assert sections["重复报事"].rows[0][2] == "市政设施"
    assert sections["地点"].rows == [["机械厂家属院3号楼", 3], ["南关村", 2]]
    cats = {r[0]: r[1] for r in sections["类别"].rows}
    assert cats == {"环境卫生": 18, "市政设施": 3, "噪音扰民": 2, "安全隐患": 2}
    overdue = {r[0] for r in sections["超期工单"].rows}
    assert overdue == {*numbers["G"], *numbers["O"], *numbers["J"]}
    rates = {r[0]: r[1:] for r in sections["概况"].rows}
    assert rates["报事量"] == [25, 1]
    assert rates["响应率"][0] == pytest.approx(19 / 22) and rates["响应率"][1] == 1
    assert rates["按期办结率"][0] == pytest.approx(17 / 23)
    assert rates["满意率（居民评价）"][0] == pytest.approx(17 / 20)
    assert sections["电话回访"].rows == []
    assert sections["电话回访"].note == "本月没有登记电话回访结果。"
    xc = {s.sheet: s for s in _brief(engine, ids, "XC").sections}
    assert [r[:2] for r in xc["重复报事"].rows] == [["西关小区", 3]]


def test_brief_files_keep_phone_numbers_out(engine: Engine, ids: dict[str, int],
                                           tmp_path: Path) -> None:
    brief = _brief(engine, ids)
    md = brief_markdown(brief)
    assert "# 府南社区2026年11月联席会议简报" in md
    assert "路灯不亮了，联系我 ［号码已隐去］" in md
    path = tmp_path / "brief.xlsx"
    write_brief_xlsx(brief, path)
    wb = load_workbook(path)
    assert wb.sheetnames == ["概况", "类别", "地点", "重复报事", "超期工单", "电话回访"]
    cells = [str(c.value) for ws in wb for row in ws.iter_rows() for c in row if c.value]
    for text in [md, *cells]:
        assert "1234" not in text.replace(" ", "")
        assert "139035" not in text  # nor any staff member's (the sample's numbers)
    assert wb["概况"]["B7"].number_format == "0"  # 报事量, under the title and headers


@pytest.mark.parametrize(("text", "masked"), [
    ("电话13912345678", "电话［号码已隐去］"),
    ("打 139-1234-5678 找我", "打 ［号码已隐去］ 找我"),
    ("3号楼2单元", "3号楼2单元"),
    ("0357-7010101", "［号码已隐去］"),
])
def test_phone_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_phones(text) == masked


async def test_postgresql_gives_the_same_figures(engine: Engine) -> None:
    async with fresh_database("rates_test") as url:
        await prepare_database(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        await build_story(url)
        pg = make_engine(url)
        try:
            async with pg.connect() as conn:
                rows = await conn.run_sync(lambda c: compute(c, Scope(NOVEMBER), AS_OF))
                fn01_id = await conn.scalar(select(Grid.id).where(Grid.code == "FN-01"))
        finally:
            await pg.dispose()
    check(total(rows.values()), tickets=36, rejected=1, waiting=1, returned=1, ack=(27, 32),
          acked=30, ack_hours=68.5, res=(26, 33), resolved=29, res_hours=975.5,
          rated=(20, 6, 3), escalated=(8, 12), reopened=(3, 3))
    check(roll_up(rows, "grid")[fn01_id], tickets=14, rejected=1, returned=1, ack=(10, 11),
          acked=10, ack_hours=42.5, res=(9, 12), resolved=9, res_hours=229.5,
          rated=(7, 2, 2), escalated=(2, 4), reopened=(2, 2))
