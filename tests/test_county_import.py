"""County directory parsing and the idempotent, all-or-nothing import into the database."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.files import CountyData, CountyFileError, load_county_dir
from bot.county.index import CountyHolder
from bot.county.store import county_version, import_county, load_county
from bot.routing import Router, wgs84_to_gcj02
from bot.routing.cli import import_dir, route_jsonl
from bot.tickets.sla import is_workday, use_county_calendar
from models import db
from models.county import Boundary, Community, CountyMeta, Grid, Place
from models.people import Person, StaffAssignment

SAMPLE = Path(__file__).resolve().parent.parent / "config" / "sample"


@pytest.fixture
async def url(tmp_path: Path) -> str:
    u = f"sqlite+aiosqlite:///{tmp_path / 'county.db'}"
    await db.upgrade(u)
    return u


@pytest.fixture
async def sm(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = db.make_engine(url)
    yield db.make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    d = tmp_path / "county"
    shutil.copytree(SAMPLE, d)
    return d


async def _import(sm: async_sessionmaker[AsyncSession], data: CountyData):  # type: ignore[no-untyped-def]
    async with sm() as s, s.begin():
        return await import_county(s, data)


async def _count(s: AsyncSession, model: type, **where: object) -> int:
    q = select(func.count()).select_from(model)
    for k, v in where.items():
        q = q.where(getattr(model, k) == v)
    return int(await s.scalar(q) or 0)


def _read_places(d: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO((d / "places.csv").read_text("utf-8"))))


def _write_places(d: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (d / "places.csv").write_text(buf.getvalue(), "utf-8")


def _edit_yaml(d: Path, fn) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((d / "grids.yaml").read_text("utf-8"))
    fn(doc)
    (d / "grids.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")


def _grid(doc: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(g for c in doc["communities"] for g in c["grids"] if g["code"] == code)


# --- parsing --------------------------------------------------------------------------------


def test_sample_parses() -> None:
    c = load_county_dir(SAMPLE)
    assert c.name == "浮山县天坛镇"
    assert [x.code for x in c.communities] == ["XC", "XJ", "FN", "DJ", "WC", "QF"]
    fn = [g for g in c.grids if g.community == "FN"]
    assert [g.name for g in fn] == ["机械厂", "南关", "社岭", "文坛", "信家坡", "南道里"]
    assert [g.code for g in fn] == [f"FN-0{i}" for i in range(1, 7)]
    assert all(2 <= len([g for g in c.grids if g.community == x.code]) <= 6 for x in c.communities)
    assert len(c.places) >= 120
    assert {b.grid for b in c.boundaries} == {g.code for g in c.grids}
    assert all(g.leader and 1 <= len(g.workers) <= 2 for g in c.grids)
    assert all(s.phone[:3] in ("139", "138", "137") and len(s.phone) == 11
               for g in c.grids for s in (*g.workers, g.leader) if s)  # fmt: skip
    assert c.grids[0].extra == {"households": 860}
    assert c.communities[0].extra["office"] == "西关路12号"
    assert not any(g.code == "FM-01" for g in c.grids)


def test_gcj02_boundary_is_converted() -> None:
    c = load_county_dir(SAMPLE)
    b = next(b for b in c.boundaries if b.grid == "XC-01")
    assert b.source_datum == "gcj02"
    raw = json.loads((SAMPLE / "boundaries.geojson").read_text("utf-8"))
    feat = next(f for f in raw["features"] if f["properties"]["grid"] == "XC-01")
    lon, lat = b.geometry["coordinates"][0][0]  # type: ignore[index]
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert [glon, glat] == pytest.approx(feat["geometry"]["coordinates"][0][0], abs=1e-7)
    assert abs(lon - feat["geometry"]["coordinates"][0][0][0]) > 0.003


def test_xlsx_and_gbk_csv_read_the_same(county_dir: Path) -> None:
    import openpyxl

    want = load_county_dir(county_dir).places
    rows = _read_places(county_dir)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "places"
    for r in rows:
        ws.append([int(x) if x.isdigit() else x for x in r])
    (county_dir / "places.csv").unlink()
    wb.save(county_dir / "places.xlsx")
    assert [(p.grid, p.name, p.aliases, p.ranges) for p in load_county_dir(county_dir).places] == [
        (p.grid, p.name, p.aliases, p.ranges) for p in want
    ]
    (county_dir / "places.xlsx").unlink()
    gbk = "网格,地名,别名,类型,门牌\n" + "\n".join(",".join(r) for r in rows[1:]) + "\n"
    (county_dir / "places.csv").write_bytes(gbk.encode("gb18030"))
    assert [(p.grid, p.name, p.ranges) for p in load_county_dir(county_dir).places] == [
        (p.grid, p.name, p.ranges) for p in want
    ]


def _problems(d: Path) -> list[str]:
    with pytest.raises(CountyFileError) as e:
        load_county_dir(d)
    return [str(p) for p in e.value.problems]


def test_places_errors_name_file_row_and_reason(county_dir: Path) -> None:
    rows = _read_places(county_dir)
    rows += [
        ["ZZ-09", "幽灵小区", "", "小区", ""],                 # row 128
        ["FN-01", "好小区", "", "小区", "1-5 left"],           # row 129
        ["DJ-04", "锦绣花园", "", "小区", "5-9"],              # row 130: overlaps DJ-03's 1-8
        ["FN-01", "机械厂家属院", "", "", ""],                 # row 131: duplicate of row 51
        ["FN-01", "A", "", "", ""],                            # row 132: too short
        ["FN-01", "", "", "", ""],                             # row 133
    ]  # fmt: skip
    _write_places(county_dir, rows)
    got = _problems(county_dir)
    assert got == [
        "places.csv 第 128 行：网格 ZZ-09 不存在（grids.yaml 里没有这个编号）",
        "places.csv 第 129 行：门牌号段“1-5 left”写法不对：应写成 1-20、7 或 1-199单 这样，"
        "前面的号不能大于后面的，多段用分号（;）隔开",
        "places.csv 第 131 行：和第 51 行重复",
        "places.csv 第 132 行：地名“A”太短，至少要 2 个字才能用来匹配",
        "places.csv 第 133 行：没有填地名",
        "places.csv 第 130 行：锦绣花园 5-9（网格 DJ-04）和第 47 行的 1-8（网格 DJ-03）"
        "门牌号段重叠",
    ]


def test_grids_errors(county_dir: Path) -> None:
    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        doc["communities"][1]["grids"][0]["code"] = "XC-01"
        _grid(doc, "FN-02")["workers"][0]["phone"] = "call me"
        _grid(doc, "FN-03")["leader"] = {"phone": "13900000000"}
        del _grid(doc, "DJ-01")["name"]
        _grid(doc, "DJ-02")["workers"][0]["phone"] = "13903570101"  # 王建军's, of XC-01

    _edit_yaml(county_dir, edit)
    got = "\n".join(_problems(county_dir))
    assert "网格编号 XC-01 重复了（第 4 行已用过）" in got
    assert "网格 FN-02 的网格员郑波：电话格式不对，只能填数字" in got
    assert "网格 FN-03 有一位网格长没有填姓名（name）" in got
    assert "网格 DJ-01 没有填名称（name）" in got
    assert "网格 DJ-02 的网格员傅军和王建军（网格 XC-01）填了同一个电话" in got
    assert "grids.yaml 第 " in got
    # the rows of XJ-01 and DJ-01, which went wrong, are not each reported as an unknown grid
    assert "不存在" not in got
    assert got.endswith("places.csv、boundaries.geojson：grids.yaml 有错误，15 行和 2 个区域的"
                        "网格编号暂未核对；请先改好 grids.yaml")


def test_bad_yaml_and_missing_files(county_dir: Path, tmp_path: Path) -> None:
    (county_dir / "grids.yaml").write_text("name: [unclosed\n", "utf-8")
    assert _problems(county_dir)[0].startswith("grids.yaml 第 2 行：格式有误")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _problems(empty) == [f"grids.yaml：在 {empty} 里没有找到这个文件"]
    shutil.copy(SAMPLE / "grids.yaml", empty / "grids.yaml")
    assert _problems(empty) == ["places.csv：没有找到 places.csv 或 places.xlsx"]
    (empty / "places.csv").write_text("grid,place\n", "utf-8")
    (empty / "places.xlsx").write_bytes(b"")
    assert "只能留一个" in _problems(empty)[0]


def test_boundary_errors(county_dir: Path) -> None:
    path = county_dir / "boundaries.geojson"
    doc = json.loads(path.read_text("utf-8"))
    f = doc["features"]
    f[1]["properties"]["grid"] = "ZZ-01"
    f[2]["geometry"]["coordinates"] = [[[y, x] for x, y in f[2]["geometry"]["coordinates"][0]]]
    f[3]["geometry"]["coordinates"] = [[[111.84, 35.97], [111.85, 35.98], [111.85, 35.97],
                                        [111.84, 35.98], [111.84, 35.97]]]  # fmt: skip
    f[4]["properties"]["grid"] = f[5]["properties"]["grid"]
    f[6]["properties"]["datum"] = "bd09"
    f[7]["geometry"] = {"type": "Point", "coordinates": [111.85, 35.97]}
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    got = _problems(county_dir)
    assert got[0] == ("boundaries.geojson 第 2 个区域：网格 ZZ-01 不存在"
                      "（grids.yaml 里没有这个编号）")
    assert "第 3 个区域：网格 WC-01 的坐标好像是先纬度后经度" in got[1]
    assert "第 4 个区域：网格 QF-01 的边界不是合格的多边形：边线自相交（在 111.8" in got[2]
    assert got[3] == "boundaries.geojson 第 6 个区域：网格 XC-03 已经有边界了（第 5 个区域）"
    assert "第 7 个区域：坐标系“bd09”不认识" in got[4]
    assert "第 8 个区域：网格 WC-02 的边界应是多边形（Polygon 或 MultiPolygon），现在是 Point" \
        in got[5]
    assert len(got) == 6


# --- the database -----------------------------------------------------------------------------


async def test_import_then_load_round_trips(sm: async_sessionmaker[AsyncSession]) -> None:
    data = load_county_dir(SAMPLE)
    report = await _import(sm, data)
    assert report.version == 1
    assert report.tables["grids"].created == 25
    assert report.tables["places"].created == len(data.places)
    async with sm() as s:
        back = await load_county(s)
        assert await county_version(s) == 1
        # 曹梅 leads two grids: one person, two assignments
        assert await _count(s, Person, name="曹梅") == 1
        assert await _count(s, StaffAssignment, role="leader") == 25
    assert back.name == data.name
    assert back.communities == data.communities
    assert back.grids == data.grids
    assert [replace(p, row=0) for p in back.places] == [replace(p, row=0) for p in data.places]
    assert back.boundaries == data.boundaries
    a, b = Router.build(data), Router.build(back)
    for text in ("锦绣花园12号楼", "府前街24号", "老医院", "南关新村", "无处"):
        assert a.route(text) == b.route(text)


async def test_reimport_is_idempotent(sm: async_sessionmaker[AsyncSession]) -> None:
    data = load_county_dir(SAMPLE)
    await _import(sm, data)
    async with sm() as s:
        before = {m.__name__: await _count(s, m) for m in (Grid, Place, Person, StaffAssignment)}
    report = await _import(sm, data)
    assert report.version == 1  # nothing changed: running services must not reload
    for name, c in report.tables.items():
        assert (c.created, c.updated, c.deactivated) == (0, 0, 0), name
    async with sm() as s:
        after = {m.__name__: await _count(s, m) for m in (Grid, Place, Person, StaffAssignment)}
        assert after == before
        assert (await s.get(CountyMeta, 1)).version == 1  # type: ignore[union-attr]
    assert "数据版本 1（没有变化，版本号不变）" in report.summary()


async def test_reimport_updates_and_deactivates(
    sm: async_sessionmaker[AsyncSession], county_dir: Path
) -> None:
    await _import(sm, load_county_dir(county_dir))
    async with sm() as s:
        old_worker = await s.scalar(select(Person).where(Person.phone == "13903572201"))
        renamed = await s.scalar(select(Person).where(Person.phone == "13903572101"))
        assert old_worker is not None and renamed is not None
        # a worker added through an invite, not from the files: the import must leave it alone
        grid = await s.scalar(select(Grid).where(Grid.code == "FN-02"))
        invited = Person(name="邀请来的", phone="13700000000")
        s.add(invited)
        await s.flush()
        s.add(StaffAssignment(person_id=invited.id, role="worker", grid_id=grid.id))  # type: ignore[union-attr]
        await s.commit()

    rows = [r for r in _read_places(county_dir) if r[1] != "南关新村"]
    for r in rows:
        if r[1] == "机械厂家属院":
            r[2] = "机械厂小区|老机械厂"
    _write_places(county_dir, rows)

    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        comm = next(c for c in doc["communities"] if c["code"] == "QF")
        comm["grids"] = [g for g in comm["grids"] if g["code"] != "QF-03"]
        _grid(doc, "FN-02")["workers"] = [{"name": "新来的", "phone": "13903579999"}]
        _grid(doc, "FN-01")["workers"][0]["name"] = "罗琴琴"  # same phone: same person
        _grid(doc, "FN-04")["workers"].append({"name": "没电话"})

    _edit_yaml(county_dir, edit)
    rows = [r for r in _read_places(county_dir) if r[0] != "QF-03"]
    _write_places(county_dir, rows)
    geo = json.loads((county_dir / "boundaries.geojson").read_text("utf-8"))
    geo["features"] = [f for f in geo["features"] if f["properties"]["grid"] != "QF-03"]
    (county_dir / "boundaries.geojson").write_text(json.dumps(geo, ensure_ascii=False), "utf-8")

    report = await _import(sm, load_county_dir(county_dir))
    t = report.tables
    assert t["grids"].deactivated == 1
    assert t["places"].deactivated == 1 + 5  # 南关新村 and QF-03's five rows
    assert t["places"].updated == 1
    assert t["boundaries"].deactivated == 1
    assert t["people"].created == 2 and t["people"].updated == 1
    async with sm() as s:
        qf3 = await s.scalar(select(Grid).where(Grid.code == "QF-03"))
        assert qf3 is not None and not qf3.active  # kept for history, not deleted
        assert await _count(s, Place, name="南关新村") == 1
        assert await _count(s, Place, name="南关新村", active=True) == 0
        assert await _count(s, Boundary, grid_id=qf3.id, active=False) == 1
        assert await _count(s, StaffAssignment, grid_id=qf3.id, active=True) == 0
        gone = await s.get(Person, old_worker.id)
        assert gone is not None and not gone.active
        same = await s.get(Person, renamed.id)
        assert same is not None and same.name == "罗琴琴" and same.active
        assert await _count(s, StaffAssignment, person_id=invited.id, active=True) == 1
        back = await load_county(s)
    assert "QF-03" not in {g.code for g in back.grids}
    fn2 = next(g for g in back.grids if g.code == "FN-02")
    assert [w.name for w in fn2.workers] == ["邀请来的", "新来的"]
    router = Router.build(back)
    assert router.route("南关新村停水").grid == "FN-02"  # 南关 is what is left
    assert router.route("老机械厂门口").grid == "FN-01"

    # again: the worker without a phone is found by name within the grid, not duplicated
    report = await _import(sm, load_county_dir(county_dir))
    assert report.tables["people"].created == 0
    async with sm() as s:
        assert await _count(s, Person, name="没电话") == 1

    # and a grid that comes back is reactivated, with its people
    shutil.copy(SAMPLE / "grids.yaml", county_dir / "grids.yaml")
    shutil.copy(SAMPLE / "places.csv", county_dir / "places.csv")
    shutil.copy(SAMPLE / "boundaries.geojson", county_dir / "boundaries.geojson")
    report = await _import(sm, load_county_dir(county_dir))
    assert report.tables["grids"].updated == 1
    async with sm() as s:
        assert (await s.scalar(select(Grid).where(Grid.code == "QF-03"))).active  # type: ignore[union-attr]
        assert await _count(s, Place, name="南关新村", active=True) == 1
        assert await _count(s, Person, phone="13903572201", active=True) == 1


async def test_failed_import_changes_nothing(url: str, county_dir: Path) -> None:
    await import_dir(url, county_dir)
    rows = _read_places(county_dir)
    rows.append(["FN-01", "新小区", "", "", "oops"])
    _write_places(county_dir, rows)
    with pytest.raises(CountyFileError, match=r"places\.csv 第 128 行"):
        await import_dir(url, county_dir)
    engine = db.make_engine(url)
    async with db.make_sessionmaker(engine)() as s:
        assert await county_version(s) == 1
        assert await _count(s, Place, name="新小区") == 0
    await engine.dispose()


async def test_cli_import_and_route(url: str) -> None:
    report = await import_dir(url, SAMPLE)
    assert report.tables["communities"].created == 6
    inp = io.StringIO(
        '{"text": "錦繡花園3號樓"}\n{"text": "有3个路灯坏了", "chat_grid": "XJ-03"}\n'
    )
    out = io.StringIO()
    assert await route_jsonl(url, inp, out) == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rows == [
        {"grid": "DJ-03", "status": "routed", "candidates": [], "matched": ["锦绣花园"]},
        {"grid": "XJ-03", "status": "routed", "candidates": [], "matched": ["chat"]},
    ]


async def test_empty_database_loads_empty_county(sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as s:
        c = await load_county(s)
        assert await county_version(s) == 0
        assert await _count(s, Community) == 0
    assert c.grids == () and Router.build(c).route("锦绣花园").grid is None


HOLIDAYS = """\
# 2035 (an example year): days off, and the weekend days worked instead
off:
  - 2035-01-01
  - 2035-02-07 ~ 2035-02-13
work:
  - 2035-02-17
"""


def test_holidays_file_parses_days_and_spans(county_dir: Path) -> None:
    (county_dir / "holidays.yaml").write_text(HOLIDAYS, "utf-8")
    cal = dict(load_county_dir(county_dir).calendar)
    assert len(cal) == 9
    assert cal[date(2035, 1, 1)] is False and cal[date(2035, 2, 17)] is True
    assert all(cal[date(2035, 2, d)] is False for d in range(7, 14))
    (county_dir / "holidays.yaml").write_text("# nothing yet\n", "utf-8")
    assert load_county_dir(county_dir).calendar == ()
    assert load_county_dir(SAMPLE).calendar == ()


def test_holidays_errors_name_the_line(county_dir: Path) -> None:
    (county_dir / "holidays.yaml").write_text(
        "off:\n"
        "  - 2035-02-30\n"  # line 2
        "  - 2035-03-05 ~ 2035-03-01\n"  # line 3
        "  - 2035-01-01 ~ 2035-03-01\n"  # line 4
        "  - 2035-05-01\n"
        "work: [2035-05-01]\n"  # line 6
        "extra: []\n",  # line 7
        "utf-8")
    assert _problems(county_dir) == [
        "holidays.yaml 第 2 行：“2035-02-30”不是日期，应写成 2027-02-06 或 "
        "2027-02-06 ~ 2027-02-12",
        "holidays.yaml 第 3 行：“2035-03-05 ~ 2035-03-01”的结束日期早于开始日期",
        "holidays.yaml 第 4 行：“2035-01-01 ~ 2035-03-01”超过 31 天，是不是写错了？",
        "holidays.yaml 第 6 行：2035-05-01 同时写在了 off（放假）和 work（调休上班）里",
        "holidays.yaml 第 7 行：不认识“extra”：只能写 off（放假）和 work（调休上班）",
    ]


async def test_holidays_import_replaces_the_countys_days_and_reaches_the_deadlines(
        url: str, county_dir: Path) -> None:
    (county_dir / "holidays.yaml").write_text(HOLIDAYS, "utf-8")
    report = await import_dir(url, county_dir)
    assert report.tables["calendar"].created == 9
    engine = db.make_engine(url)
    holder = CountyHolder(db.make_sessionmaker(engine))
    try:
        await holder.refresh(force=True)
        assert not is_workday(date(2035, 1, 1)) and is_workday(date(2035, 2, 17))
        # the schedule is corrected: 1 January stays off, the rest of the file goes
        (county_dir / "holidays.yaml").write_text("off: [2035-01-01]\nwork: []\n", "utf-8")
        report = await import_dir(url, county_dir)
        cal = report.tables["calendar"]
        assert (cal.created, cal.unchanged, cal.removed) == (0, 1, 8)
        await holder.refresh()  # the version moved: a running service picks it up
        assert not is_workday(date(2035, 1, 1))
        assert is_workday(date(2035, 2, 8)) and not is_workday(date(2035, 2, 17))
        (county_dir / "holidays.yaml").unlink()
        assert (await import_dir(url, county_dir)).tables["calendar"].removed == 1
        await holder.refresh()
        assert is_workday(date(2035, 1, 1))  # a Monday, back to the package's fallback
    finally:
        use_county_calendar({})
        await engine.dispose()
