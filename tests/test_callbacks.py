"""Random call-backs (回访): the draw, the call sheet, and results recorded by the centre in chat.

The draw is pure and is checked over a year on a generated county of 20,000 households; the
rest runs through the real core on a real SQLite file with the fake clock.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.app import build_app
from bot.callbacks import words
from bot.callbacks.draw import Candidate, Quota, draw
from bot.callbacks.plan import Planned, Rules, plan_week
from bot.callbacks.record import record
from bot.callbacks.sheet import HEADERS, PHONE_COLUMN, TOP, lines, write_call_sheet
from bot.callbacks.week import Week
from bot.county.files import HOUSEHOLDS_CSV, CountyFileError, load_county_dir
from bot.reports.brief import build_brief
from bot.reports.names import load_names
from bot.reports.period import month
from bot.reports.rates import Tally, compute, total
from bot.reports.scope import Scope
from bot.routing.cli import import_dir
from bot.tickets.lifecycle import Actor
from config.settings import SAMPLE_DIR, Settings
from models.callbacks import REACHED, UNREACHED, CallbackCall, CallbackHousehold
from models.enums import Role
from models.enums import TicketState as S
from models.tickets import Outbox, Ticket
from models.transitions import allowed
from models.wecom import ResidentContact
from tests.conftest import SHANGHAI, FakeClock, db_url_for
from tests.pg import fresh_database
from tests.test_telegram_flow import (
    CENTRE,
    LEADER,
    RESIDENT,
    WORKER,
    Flow,
    onboard,
    report,
    ticket,
)
from tests.test_telegram_flow import flow as flow  # fixtures

QUOTA = Quota(3, 5)
COOLDOWN = 12
COUNTY = "测试县"
RESIDENT_PHONE = "17099990001"
CENTRE_ONLY = "只有指挥中心的工作人员可以登记回访结果。"

# --------------------------------------------------------------------------- the draw, pure


def _county(households: int = 20_000, communities: int = 8) -> list[Candidate]:
    """Communities of 2 to 6 grids, households spread unevenly over their grids."""
    rng = random.Random(7)
    out = []
    for i in range(households):
        c = i % communities
        grids = 2 + c % 5
        g = min(int(rng.expovariate(1.0)), grids - 1)
        out.append(Candidate(f"tel:170{i:08d}", f"C{c:02d}", f"C{c:02d}-{g:02d}"))
    return out


def _with_tickets(register: list[Candidate], week: Week) -> list[Candidate]:
    """That week's closed tickets: 30 residents, most of them also in the register."""
    rng = random.Random(str(week))
    picked = rng.sample(register, 30)
    return [*register, *(Candidate(c.key, c.community, c.grid, 1000 * week.number + i)
                         for i, c in enumerate(picked))]


def test_a_year_of_draws_is_reproducible_stratified_and_keeps_the_cooldown() -> None:
    register = _county()
    grids_of: dict[str, set[str]] = {}
    for c in register:
        grids_of.setdefault(c.community, set()).add(c.grid)
    weeks = [Week(2026, n) for n in range(1, 53)]
    history: dict[Week, list[Candidate]] = {}
    unreached: dict[Week, set[str]] = {}
    called_at: dict[str, list[int]] = {}
    for w in weeks:
        recent = [x for x in weeks if 0 < w.number - x.number < COOLDOWN]
        cooling = {c.key for x in recent for c in history[x] if c.key not in unreached[x]}
        prev = w.shift(-1)
        carried = [c for c in history.get(prev, []) if c.key in unreached.get(prev, set())]
        candidates = _with_tickets(register, w)
        sample = draw(w, COUNTY, candidates, QUOTA, cooling, carried)

        # the same week gives the same sample, whatever order the inputs came in
        shuffled = candidates[:]
        random.Random(w.number).shuffle(shuffled)
        assert draw(w, COUNTY, shuffled, QUOTA, cooling, carried[::-1]) == sample

        keys = [c.key for c in sample]
        assert len(keys) == len(set(keys))
        assert not set(keys) & cooling
        carried_keys = {c.key for c in carried}
        assert carried_keys <= set(keys)  # not reached last week: drawn again
        for community, grids in grids_of.items():
            mine = [c for c in sample if c.community == community]
            assert QUOTA.low <= len(mine) <= QUOTA.high
            fresh = Counter(c.grid for c in mine if c.key not in carried_keys)
            per_grid = [fresh.get(g, 0) for g in grids]
            assert max(per_grid) - min(per_grid) <= 1, (w, community, per_grid)
        # within a grid, a resident whose ticket closed that week before the register
        eligible_tickets = {(c.grid, c.key) for c in candidates
                            if c.ticket is not None and c.key not in cooling}
        for c in sample:
            if c.ticket is None and c.key not in carried_keys:
                assert not {k for g, k in eligible_tickets if g == c.grid} - set(keys)

        history[w] = sample
        unreached[w] = set(sorted(keys)[::5])  # every fifth household does not answer
        for key in set(keys) - unreached[w]:
            called_at.setdefault(key, []).append(w.number)

    assert len({tuple(c.key for c in s) for s in history.values()}) == len(weeks)
    gaps = [b - a for times in called_at.values() for a, b in pairwise(times)]
    assert gaps and min(gaps) >= COOLDOWN


def test_ticket_residents_come_first_and_another_week_draws_differently() -> None:
    register = [Candidate(f"tel:{i}", "FN", f"FN-0{i % 3}") for i in range(60)]
    resident = Candidate("tel:resident", "FN", "FN-02", ticket=7)
    drawn = draw(Week(2026, 49), COUNTY, [*register, resident], Quota(3, 3))
    assert resident in drawn
    assert sorted(Counter(c.grid for c in drawn).values()) == [1, 1, 1]
    weeks = {tuple(draw(Week(2026, n), COUNTY, register, Quota(3, 3))) for n in range(1, 9)}
    assert len(weeks) > 1


@pytest.mark.parametrize(("text", "result"), [
    ("回访 2026W49-001 满意", words.Result("2026W49-001", True, "satisfied", "satisfied",
                                         "satisfied")),
    ("回訪 2026w49-7 不滿意 还是漏水", words.Result("2026W49-7", True, "unsatisfied",
                                               "unsatisfied", "unsatisfied", "还是漏水")),
    ("回访 H12 社区满意 网格员基本满意 业委会无 备注：路灯已修",
     words.Result("H12", True, "satisfied", "fairly", "", "路灯已修")),
    ("回访 H12，业委会不满意，社区：满意，网格员基本满意",
     words.Result("H12", True, "satisfied", "fairly", "unsatisfied")),
    ("回访 H3 未接通", words.Result("H3", False)),
])
def test_result_words(text: str, result: words.Result) -> None:
    assert words.parse(text) == result


@pytest.mark.parametrize("text", [
    "回访 H12 很好", "回访 H12 社区满意", "回访 H12 网格员满意 社区满意",
    "回访 H12 社区满意 网格员无 业委会满意", "回访 H12 社区满意 社区满意 网格员满意 业委会满意"])
def test_unclear_results_are_refused(text: str) -> None:
    with pytest.raises(words.Unclear):
        words.parse(text)


@pytest.mark.parametrize("text", ["回访一下我家的事", "回访 没人来", "报事 回访 H12"])
def test_sentences_without_a_call_number_are_not_results(text: str) -> None:
    assert words.parse(text) is None


# --------------------------------------------------------------------------- the register


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    d = tmp_path / "county"
    shutil.copytree(SAMPLE_DIR, d)
    return d


def test_the_register_is_validated_like_places_without_repeating_phones(
        county_dir: Path) -> None:
    (county_dir / HOUSEHOLDS_CSV).write_text(
        "网格,门牌,姓名,电话\n"
        "FN-02,南关村1号,甲,17000000001\n"
        "FN-99,南关村2号,乙,17000000002\n"
        "FN-02,,丙,17000000003\n"
        "FN-02,南关村4号,丁,1700000\n"
        "FN-02,南关村5号,戊,\n"
        "FN-02,南关村1号,甲,17000000009\n", encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(county_dir)
    assert [str(p) for p in e.value.problems] == [
        "households.csv 第 3 行：网格 FN-99 不存在（grids.yaml 里没有这个编号）",
        "households.csv 第 4 行：没有填门牌（地址）",
        "households.csv 第 5 行：电话格式不对，只有 7 位，手机号应为 11 位",
        "households.csv 第 6 行：没有填电话，这一户无法回访",
        "households.csv 第 7 行：和第 2 行重复",
    ]
    (county_dir / HOUSEHOLDS_CSV).write_text("网格,姓名\nFN-02,甲\n", encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(county_dir)
    assert [str(p) for p in e.value.problems] == [
        "households.csv 第 1 行：表头缺少这些列：门牌、电话"]


async def test_reimport_keeps_the_register_and_deactivates_who_left(
        county_dir: Path, tmp_path: Path) -> None:
    url = db_url_for(tmp_path / "register.db")
    first = await import_dir(url, county_dir)
    assert first.tables["households"].created == 14
    again = await import_dir(url, county_dir)
    assert not again.changed and again.tables["households"].unchanged == 14
    kept = (county_dir / HOUSEHOLDS_CSV).read_text(encoding="utf-8").splitlines()[:-2]
    (county_dir / HOUSEHOLDS_CSV).write_text("\n".join(kept) + "\n", encoding="utf-8")
    third = await import_dir(url, county_dir)
    assert third.tables["households"].deactivated == 2 and third.changed
    assert "17000001" not in third.summary()


# --------------------------------------------------------------------------- in the database

RULES = Rules(QUOTA, COOLDOWN, SHANGHAI)


@pytest.fixture
async def centre(flow: Flow) -> Flow:
    return await onboard(flow, WORKER, LEADER, CENTRE)


async def _resolved_with_contact(flow: Flow) -> Ticket:
    """A resident's ticket, resolved this week, whose phone the centre has (代报)."""
    tk = await report(flow)
    await flow.say(WORKER, f"接单 {tk.number}")
    await flow.say(WORKER, f"办结 {tk.number} 已清运")
    await flow.deliver()
    async with flow.tg.app.deps.sm() as s, s.begin():
        s.add(ResidentContact(ticket_id=tk.id, name="张大妈", mobile=RESIDENT_PHONE,
                              source="offline"))
    assert (await ticket(flow.tg)).state == S.RESOLVED
    return tk


async def _plan(flow: Flow, week: Week | None = None) -> Planned:
    week = week or Week.of(flow.tg.clock().astimezone(SHANGHAI).date())
    async with flow.tg.app.deps.sm() as s, s.begin():
        return await plan_week(s, week, RULES, flow.tg.clock())


async def _calls(flow: Flow) -> list[CallbackCall]:
    async with flow.tg.app.deps.sm() as s:
        return list((await s.scalars(select(CallbackCall).order_by(CallbackCall.id))).all())


async def _phones(flow: Flow) -> set[str]:
    async with flow.tg.app.deps.sm() as s:
        return set(await s.scalars(select(CallbackHousehold.phone)))


async def _payloads(flow: Flow) -> list[str]:
    async with flow.tg.app.deps.sm() as s:
        return [str(p) for p in await s.scalars(select(Outbox.payload))]


async def test_the_sheet_has_the_phones_and_the_ticket_summary(centre: Flow,
                                                               tmp_path: Path) -> None:
    tk = await _resolved_with_contact(centre)
    planned = await _plan(centre)
    assert planned.new and planned.week == Week(2026, 10)
    assert sum(1 for c in planned.calls if c.ticket_id == tk.id) == 1
    path = tmp_path / "sheet.xlsx"
    async with centre.tg.app.deps.sm() as s:
        write_call_sheet(planned.week, await lines(s, planned.week), path, SHANGHAI)
    ws = load_workbook(path).worksheets[0]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=TOP)]
    assert rows[0] == HEADERS
    body = rows[1:]
    assert [r[0] for r in body] == [c.number for c in planned.calls]
    by_number = {r[0]: r for r in body}
    mine = by_number[next(c.number for c in planned.calls if c.ticket_id == tk.id)]
    call = next(c for c in planned.calls if c.ticket_id == tk.id)
    assert mine[1:8] == [f"H{call.household_id}", "府南社区", "南关网格", "南关农贸市场",
                         "张大妈", RESIDENT_PHONE, tk.number]
    summary = mine[HEADERS.index("工单摘要")]
    assert isinstance(summary, str) and summary and summary in tk.text
    results = HEADERS.index("接通情况")
    assert all(v is None for r in body for v in r[results:])  # result columns left empty
    assert ws.data_validations.dataValidation  # the result columns offer their words
    phones = await _phones(centre)
    for r in body:
        assert r[PHONE_COLUMN - 1] in phones
        assert not [v for j, v in enumerate(r) if j != PHONE_COLUMN - 1 and v in phones]
    # asked again for the same week: the same calls, drawn once
    again = await _plan(centre)
    assert not again.new and [c.number for c in again.calls] == [c.number for c in planned.calls]


async def test_a_worker_may_not_record_and_unclear_words_are_refused(centre: Flow) -> None:
    await _resolved_with_contact(centre)
    call = (await _plan(centre)).calls[0]
    await centre.say(WORKER, f"回访 {call.number} 满意")
    await centre.say(CENTRE, f"回访 {call.number} 还行吧")
    await centre.deliver()
    assert centre.texts(WORKER)[-1] == CENTRE_ONLY
    assert centre.texts(CENTRE)[-1].startswith("没看懂这条回访结果。请这样写：回访 2026W49-001")
    assert all(c.outcome == "" for c in await _calls(centre))


async def test_unsatisfied_reopens_the_ticket_and_tells_the_leader_without_phones(
        centre: Flow, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="aiosqlite")  # as run_bot._logging keeps it
    tk = await _resolved_with_contact(centre)
    call = next(c for c in (await _plan(centre)).calls if c.ticket_id == tk.id)
    centre.clear()
    await centre.say(CENTRE, f"回访 {call.number} 社区满意 网格员不满意 业委会无 "
                             f"还是有味道，回电 {RESIDENT_PHONE}")
    await centre.deliver()
    assert centre.texts(CENTRE) == [
        f"已登记回访 {call.number}：社区满意，网格员不满意，业委会无。"
        f"工单 {tk.number} 已重新派单，并已告知网格长。"]
    assert (await ticket(centre.tg)).state == S.ASSIGNED
    told = centre.texts(LEADER)
    assert len(told) == 1 and told[0].startswith(f"【回访】工单 {tk.number} 电话回访中居民")
    assert "已重新派给郑波" in told[0]
    assert any(x.startswith(f"【重新派单】{tk.number}") for x in centre.texts(WORKER))
    (saved,) = [c for c in await _calls(centre) if c.id == call.id]
    assert (saved.outcome, saved.worker_rating, saved.committee_rating) == \
        (REACHED, "unsatisfied", "")
    phones = await _phones(centre)
    assert RESIDENT_PHONE in phones
    for payload in await _payloads(centre):
        assert not [p for p in phones if p in payload]
    assert not [p for p in phones if p in caplog.text]

    # counted as a second rating source beside the in-chat ratings, and in the brief
    march = month(2026, 3, SHANGHAI)
    async with centre.tg.app.engine.connect() as conn:
        counts = await conn.run_sync(
            lambda c: total(compute(c, Scope(march), centre.tg.clock()).values()))
        brief = await conn.run_sync(lambda c: build_brief(
            c, load_names(c), load_names(c).community_id("FN") or 0, march, centre.tg.clock()))
    assert counts.tally("callback") == Tally(0, 0, 1)
    assert counts.tally("chat").rated == 0 and counts.reopened == 1
    section = next(s for s in brief.sections if s.sheet == "电话回访")
    assert section.rows[1] == ["对网格员", 1, 0, 0, 1, 0.0]
    assert section.rows[2] == ["对业委会", 0, 0, 0, 0, None]

    await centre.say(CENTRE, f"回访 {call.number} 满意")  # once recorded, not again
    await centre.deliver()
    assert centre.texts(CENTRE)[-1].startswith(f"回访 {call.number} 已于 03-03")


async def test_unsatisfied_about_a_closed_ticket(centre: Flow) -> None:
    tk = await _resolved_with_contact(centre)
    await centre.say(RESIDENT, f"满意 {tk.number}")
    await centre.deliver()
    assert (await ticket(centre.tg)).state == S.CLOSED
    call = next(c for c in (await _plan(centre)).calls if c.ticket_id == tk.id)
    centre.clear()
    await centre.say(CENTRE, f"回访 {call.number} 不满意 又堆起来了")
    await centre.deliver()
    told = centre.texts(LEADER)
    assert len(told) == 1 and f"工单 {tk.number}" in told[0] and "又堆起来了" in told[0]
    if allowed(S.CLOSED, S.REOPENED, {Role.CENTRE}):
        assert (await ticket(centre.tg)).state == S.ASSIGNED
    else:  # the transition table keeps a closed ticket closed: the leader follows it up
        assert (await ticket(centre.tg)).state == S.CLOSED
        assert centre.texts(CENTRE)[-1].endswith(
            f"工单 {tk.number} 当前为“已结案”，未重新派单，已告知网格长跟进。")


async def test_unreached_is_drawn_again_next_week_and_the_rest_cool_down(centre: Flow) -> None:
    first = await _plan(centre)
    missed, answered = first.calls[0], first.calls[1:]
    await centre.say(CENTRE, f"回访 H{missed.household_id} 未接通")
    for call in answered:
        await centre.say(CENTRE, f"回访 {call.number} 满意")
    await centre.deliver()
    assert centre.texts(CENTRE)[0] == f"已登记回访 {missed.number}：未接通，下周会再抽到这一户。"
    calls = {c.id: c for c in await _calls(centre)}
    assert calls[missed.id].outcome == UNREACHED
    assert {calls[c.id].outcome for c in answered} == {REACHED}

    following = await _plan(centre, first.week.shift(1))
    households = {c.household_id for c in following.calls}
    assert missed.household_id in households
    assert not households & {c.household_id for c in answered}
    assert following.carried == 1


async def test_plan_record_and_rates_on_postgresql(clock: FakeClock) -> None:
    async with fresh_database("callbacks") as url:
        app = await build_app(Settings(database_url=url, _env_file=None), {}, clock=clock)
        try:
            week = Week(2026, 10)
            async with app.deps.sm() as s, s.begin():
                calls = (await plan_week(s, week, RULES, clock())).calls
            centre = Actor(roles=frozenset({Role.CENTRE}), name="值班员")
            async with app.deps.sm() as s, s.begin():
                await record(s, app.deps, words.Result(calls[0].number, True, "satisfied",
                                                       "unsatisfied", ""), centre)
                await record(s, app.deps, words.Result(f"H{calls[1].household_id}", False),
                             centre)
            async with app.deps.sm() as s, s.begin():
                again = await plan_week(s, week.shift(1), RULES, clock())
            async with app.engine.connect() as conn:
                counts = await conn.run_sync(lambda c: total(
                    compute(c, Scope(month(2026, 3, SHANGHAI)), clock()).values()))
        finally:
            await app.close()
    assert counts.tally("callback") == Tally(0, 0, 1)
    drawn = {c.household_id for c in again.calls}
    assert calls[1].household_id in drawn and calls[0].household_id not in drawn
