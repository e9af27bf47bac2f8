"""`wecom grids push`: the county mirrored into WeCom's grid structure (fake WeCom on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from config.settings import Settings
from handlers.wecom.residents.cli import LIMITS, OK, push_command
from handlers.wecom.residents.plan import Node, check, cut, plan
from handlers.wecom.residents.retry import Backoff
from models.county import Community, Grid
from models.db import make_engine, make_sessionmaker
from models.enums import StaffRole
from models.people import Identity, Person, StaffAssignment
from models.wecom import WeComGrid
from tests.fakes.wecom_resident import GRID_ADD, GRID_DELETE, GRID_UPDATE, ROOT, FakeResidentWeCom
from tests.procs import REPO, clean_env

CORP, SECRET = "wwcorp", "s3cret"
FAST = Backoff(attempts=4, first=0.01, most=0.05)


@pytest.fixture
async def wecom() -> AsyncIterator[FakeResidentWeCom]:
    async with FakeResidentWeCom(CORP, SECRET) as fake:
        yield fake


@pytest.fixture
async def wc_settings(loaded_settings: Settings, wecom: FakeResidentWeCom) -> Settings:
    """The sample county with every staff member bound to a WeCom userid wx<person id>."""
    settings = loaded_settings.model_copy(update={
        "wecom_corp_id": CORP, "wecom_secret": SecretStr(SECRET), "wecom_api_base": wecom.base_url})
    await bind_staff(settings)
    return settings


async def bind_staff(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            for p in (await s.scalars(select(Person))).all():
                s.add(Identity(channel="wecom", user_id=f"wx{p.id}", person_id=p.id,
                               display_name=p.name))
    finally:
        await engine.dispose()


async def run_sql(settings: Settings, *stmts: Any) -> list[Any]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            return [await s.execute(st) for st in stmts]
    finally:
        await engine.dispose()


async def county(settings: Settings) -> tuple[list[Community], list[Grid], list[Any]]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            comms = list((await s.scalars(select(Community).where(
                Community.active.is_(True)))).all())
            grids = list((await s.scalars(select(Grid).where(Grid.active.is_(True)))).all())
            staff = list((await s.execute(select(
                StaffAssignment.role, StaffAssignment.grid_id, StaffAssignment.person_id)
                .where(StaffAssignment.active.is_(True)))).all())
            return comms, grids, staff
    finally:
        await engine.dispose()


async def pushed(settings: Settings) -> dict[tuple[str, int], WeComGrid]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            return {(r.kind, r.our_id): r for r in (await s.scalars(select(WeComGrid))).all()}
    finally:
        await engine.dispose()


async def push(settings: Settings, dry_run: bool = False) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = await push_command(settings, dry_run, lines.append, FAST)
    return code, lines


# -- the plan, pure ---------------------------------------------------------------------------


def test_wecom_limits_are_checked_with_a_line_for_each_problem() -> None:
    chain: list[Node] = []
    for i in range(10):  # WeCom's root is level 1: the tenth node down sits at level 11
        chain.append(Node("grid", 100 + i, f"层{i}", ("grid", 99 + i) if i else None, ("boss",)))
    nodes = [
        Node("community", 1, "大社区", None, tuple(f"a{i}" for i in range(21))),
        Node("grid", 2, "大网格", ("community", 1), ("lead",),
             tuple(f"m{i}" for i in range(101))),
        Node("grid", 3, "无人网格", ("community", 1), ()),
        *[Node("grid", 10 + i, f"网格{i}", ("community", 1), ("busy",)) for i in range(11)],
        *chain,
    ]
    problems = check(nodes, {"busy": "忙人"})
    assert problems == [
        "大社区：负责人 21 人，企业微信最多 20 人",
        "大网格：成员 101 人，企业微信最多 100 人",
        "无人网格：没有绑定企业微信的负责人（网格长或社区协调员），企业微信要求至少 1 人",
        "层9：在第 11 层，企业微信最多 10 层",
        "忙人：是 11 个网格的负责人，企业微信最多 10 个",
    ]
    assert check([n for n in nodes if n.our_id in (2,)][:0] + chain[:9], {}) == []


def test_names_are_cut_to_wecom_s_thirty_characters() -> None:
    assert cut("  " + "长" * 40) == "长" * 30
    assert cut("西关") == "西关"


def test_plan_adds_parents_first_and_deletes_children_first() -> None:
    nodes = [Node("grid", 5, "格", ("community", 1), ("l",)),
             Node("community", 1, "社", None, ("l",))]
    ops = plan(nodes, [])
    assert [(o.action, o.kind) for o in ops] == [("add", "community"), ("add", "grid")]


# -- against the fake WeCom ---------------------------------------------------------------------


async def test_push_mirrors_communities_grids_and_staff(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    code, lines = await push(wc_settings)
    assert code == OK, lines
    comms, grids, staff = await county(wc_settings)
    ids = await pushed(wc_settings)
    assert len(ids) == len(comms) + len(grids)
    for c in comms:
        node = wecom.grids[ids[("community", c.id)].wecom_id]
        assert node["grid_parent_id"] == ROOT and node["grid_name"] == c.name
        assert node["grid_admin"]  # WeCom wants one at least: its grids' leaders
    for g in grids:
        node = wecom.grids[ids[("grid", g.id)].wecom_id]
        assert node["grid_parent_id"] == ids[("community", g.community_id)].wecom_id
        assert node["grid_name"] == g.name
        leaders = {f"wx{p}" for role, gid, p in staff
                   if gid == g.id and role == StaffRole.LEADER.value}
        workers = {f"wx{p}" for role, gid, p in staff
                   if gid == g.id and role == StaffRole.WORKER.value} - leaders
        assert set(node["grid_admin"]) == leaders and set(node["grid_member"]) == workers
    assert lines[-1] == f"已推送到企业微信：新增 {len(ids)}，修改 0，删除 0。"


async def test_a_second_push_changes_nothing_and_a_third_only_what_changed(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    assert (await push(wc_settings))[0] == OK
    first = len(wecom.writes())
    code, lines = await push(wc_settings)
    assert code == OK and lines == ["企业微信里的网格已是最新，不用改。"]
    assert len(wecom.writes()) == first
    _comms, grids, _staff = await county(wc_settings)
    renamed, gone = grids[0], grids[1]
    before = await pushed(wc_settings)
    await run_sql(wc_settings,
                  update(Grid).where(Grid.id == renamed.id).values(name="西关" + "新" * 40),
                  update(Grid).where(Grid.id == gone.id).values(active=False))
    code, lines = await push(wc_settings)
    assert code == OK, lines
    # the renamed grid; its community, whose admins were its grids' leaders; the grid gone
    # (emptied of members first: WeCom deletes only empty grids)
    assert wecom.writes()[first:] == [GRID_UPDATE, GRID_UPDATE, GRID_UPDATE, GRID_DELETE]
    community = next(c for c in _comms if c.id == gone.community_id)
    assert lines[:3] == [f"修改社区：{community.name}（负责人）",
                         f"修改网格：{('西关' + '新' * 40)[:30]}（名称）", f"删除网格：{gone.name}"]
    assert wecom.grids[before[("grid", renamed.id)].wecom_id]["grid_name"] == \
        ("西关" + "新" * 40)[:30]
    assert before[("grid", gone.id)].wecom_id not in wecom.grids
    after = await pushed(wc_settings)
    assert ("grid", gone.id) not in after and len(after) == len(before) - 1
    assert lines[-1] == "已推送到企业微信：新增 0，修改 2，删除 1。"


async def test_dry_run_prints_the_plan_and_calls_nothing(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    code, lines = await push(wc_settings, dry_run=True)
    comms, grids, _staff = await county(wc_settings)
    assert code == OK
    assert wecom.calls == []  # not even a token
    assert lines[0] == f"新增社区：{comms[0].name}"
    assert f"新增网格：{grids[0].name}" in lines
    assert lines[-1] == f"计划（未做修改）：共 {len(comms) + len(grids)} 项"
    assert await pushed(wc_settings) == {}


async def test_a_county_over_wecom_s_limits_is_reported_before_any_call(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    _comms, grids, _staff = await county(wc_settings)
    engine = make_engine(wc_settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            for i in range(101):
                p = Person(name=f"网格员{i}")
                s.add(p)
                await s.flush()
                s.add(Identity(channel="wecom", user_id=f"many{i}", person_id=p.id))
                s.add(StaffAssignment(person_id=p.id, role=StaffRole.WORKER.value,
                                      grid_id=grids[0].id, source="invite"))
    finally:
        await engine.dispose()
    code, lines = await push(wc_settings)
    assert code == LIMITS
    assert lines[0] == "推送前检查发现 1 个问题，什么都没改："
    assert lines[1].endswith("企业微信最多 100 人") and grids[0].name in lines[1]
    assert wecom.calls == []


async def test_faults_are_retried_and_an_interrupted_push_resumes_without_doubles(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    comms, grids, _staff = await county(wc_settings)
    wecom.fail_http(GRID_ADD, 502, times=2)
    wecom.fail(GRID_ADD, 42001, times=1)  # an expired token: refreshed, retried
    assert (await push(wc_settings))[0] == OK
    assert len(wecom.grids) == 1 + len(comms) + len(grids)
    assert wecom.token_fetches >= 2
    # WeCom down for good halfway through: the CLI says so in one line, exit code 3
    await run_sql(wc_settings, update(Grid).where(Grid.id == grids[0].id).values(name="甲"),
                  update(Grid).where(Grid.id == grids[1].id).values(name="乙"))
    wecom.fail_http(GRID_UPDATE, 502, times=FAST.attempts)  # every try of the first update
    code, lines = await push(wc_settings)
    assert code == 3 and lines == ["企业微信暂时连不上，请稍后再试。"]
    code, lines = await push(wc_settings)
    assert code == OK, lines
    assert len(wecom.grids) == 1 + len(comms) + len(grids)  # nothing added twice
    assert {wecom.grids[g.wecom_id]["grid_name"] for g in (await pushed(wc_settings)).values()
            if g.kind == "grid"} >= {"甲", "乙"}


async def run_cli(settings: Settings, *args: str, **env: str) -> tuple[int, str]:
    full = clean_env()
    full.update({"DATABASE_URL": settings.database_url, "PYTHONUNBUFFERED": "1", **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", *args, cwd=REPO, env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return int(proc.returncode or 0), out.decode()


async def test_the_cli_answers_in_one_line_and_an_exit_code(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    code, out = await run_cli(wc_settings, "wecom", "grids", "push", "--dry-run")
    assert code == 2 and out == "没有配置企业微信（WECOM_CORP_ID、WECOM_SECRET），做不了。\n"
    wecom_env = {"WECOM_CORP_ID": CORP, "WECOM_SECRET": SECRET,
                 "WECOM_API_BASE": wecom.base_url}
    code, out = await run_cli(wc_settings, "wecom", "grids", "push", "--dry-run", **wecom_env)
    comms, grids, _staff = await county(wc_settings)
    assert code == 0, out
    assert out.splitlines()[-1] == f"计划（未做修改）：共 {len(comms) + len(grids)} 项"
    assert wecom.calls == []
    code, out = await run_cli(wc_settings, "wecom", "residents", "sync",
                              **{**wecom_env, "WECOM_SECRET": "wrong"})
    assert code == 4 and out.splitlines()[-1] == \
        "企业微信拒绝了请求（错误码 40001）。请确认本应用已加入「居民上报 - 可调用接口的应用」。"
    assert "Traceback" not in out
