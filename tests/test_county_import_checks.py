"""County import: one root cause per typo, refusals of files that used to pass silently,
phone messages, and a county version that moves only when the county did."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.files import CountyData, CountyFileError, load_county_dir
from bot.county.store import Counts, ImportReport, county_version, import_county
from bot.notify.texts import use_language
from models import db
from tests.procs import REPO, clean_env

SAMPLE = REPO / "config" / "sample"
NOT_CHECKED = "的网格编号暂未核对；请先改好 grids.yaml"
SKIPPED = "places.csv、boundaries.geojson：grids.yaml 有错误，"
YAML_TYPO = ("“name 鼓楼”第 9 列附近写法有误，请检查冒号、缩进和括号"
             "（解析器提示：could not find expected ':' (while scanning a simple key)）")


@pytest.fixture
def county_dir(tmp_path: Path) -> Path:
    d = tmp_path / "county"
    shutil.copytree(SAMPLE, d)
    return d


@pytest.fixture
async def sm(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'county.db'}"
    await db.upgrade(url)
    engine = db.make_engine(url)
    yield db.make_sessionmaker(engine)
    await engine.dispose()


def _problems(d: Path) -> list[str]:
    with pytest.raises(CountyFileError) as e:
        load_county_dir(d)
    return [str(p) for p in e.value.problems]


def _replace_line(path: Path, old: str, new: str) -> int:
    """Replace the one line equal to `old` (stripped); returns its 1-based number."""
    lines = path.read_text("utf-8").split("\n")
    n = next(i for i, line in enumerate(lines) if line.strip() == old)
    lines[n] = lines[n].replace(old, new)
    path.write_text("\n".join(lines), "utf-8")
    return n + 1


def _edit_yaml(d: Path, fn: Any) -> None:
    doc = yaml.safe_load((d / "grids.yaml").read_text("utf-8"))
    fn(doc)
    (d / "grids.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")


def _grid(doc: dict[str, Any], code: str) -> dict[str, Any]:
    return next(g for c in doc["communities"] for g in c["grids"] if g["code"] == code)


def _places(d: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO((d / "places.csv").read_text("utf-8"))))


def _edit_geojson(d: Path, fn: Any) -> None:
    path = d / "boundaries.geojson"
    doc = json.loads(path.read_text("utf-8"))
    fn(doc["features"])
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def _feature(features: list[dict[str, Any]], grid: str) -> tuple[int, dict[str, Any]]:
    return next((i, f) for i, f in enumerate(features, start=1) if f["properties"]["grid"] == grid)


# --- 1. one typo in grids.yaml is one problem, not one per dependent row --------------------


def test_yaml_typo_is_reported_once_at_its_line(county_dir: Path) -> None:
    line = _replace_line(county_dir / "grids.yaml", "name: 鼓楼", "name 鼓楼")
    got = _problems(county_dir)
    assert got == [
        f"grids.yaml 第 {line} 行：{YAML_TYPO}",
        f"{SKIPPED}126 行和 25 个区域{NOT_CHECKED}",
    ]


def test_yaml_typo_does_not_hide_real_problems_in_places(county_dir: Path) -> None:
    _replace_line(county_dir / "grids.yaml", "name: 鼓楼", "name 鼓楼")
    with (county_dir / "places.csv").open("a", encoding="utf-8") as f:
        f.write("FN-01,新小区,,,oops\n")
    got = _problems(county_dir)
    assert len(got) == 3
    assert got[1].startswith("places.csv 第 128 行：门牌号段“oops”写法不对")
    assert got[2].endswith(f"127 行和 25 个区域{NOT_CHECKED}")


def test_invalid_grid_skips_its_rows_with_one_summary(county_dir: Path) -> None:
    _edit_yaml(county_dir, lambda doc: _grid(doc, "DJ-03").pop("name"))
    got = _problems(county_dir)
    assert len(got) == 2
    assert got[0].startswith("grids.yaml 第 ") and got[0].endswith("网格 DJ-03 没有填名称（name）")
    n_rows = sum(1 for r in _places(county_dir)[1:] if r[0] == "DJ-03")
    assert n_rows > 1
    assert got[1] == f"{SKIPPED}{n_rows} 行和 1 个区域{NOT_CHECKED}"


def test_clean_grids_still_report_each_unknown_grid(county_dir: Path) -> None:
    with (county_dir / "places.csv").open("a", encoding="utf-8") as f:
        f.write("ZZ-01,幽灵小区,,,\n")
    assert _problems(county_dir) == [
        "places.csv 第 128 行：网格 ZZ-01 不存在（grids.yaml 里没有这个编号）"
    ]


# --- 2. refused, where they used to pass -------------------------------------------------------


def test_unclosed_ring_is_refused(county_dir: Path) -> None:
    def edit(features: list[dict[str, Any]]) -> None:
        # dropping the closing point leaves a valid-looking polygon shapely would close itself
        _feature(features, "FN-02")[1]["geometry"]["coordinates"][0].pop()

    _edit_geojson(county_dir, edit)
    i, feat = _feature(json.loads((county_dir / "boundaries.geojson").read_text("utf-8"))
                       ["features"], "FN-02")
    ring = feat["geometry"]["coordinates"][0]
    assert _problems(county_dir) == [
        f"boundaries.geojson 第 {i} 个区域：网格 FN-02 的外圈没有闭合：最后一个点 {ring[-1]} "
        f"要和第一个点 {ring[0]} 相同"
    ]


def test_unclosed_ring_in_a_multipolygon_is_refused(county_dir: Path) -> None:
    def edit(features: list[dict[str, Any]]) -> None:
        geom = _feature(features, "FN-06")[1]["geometry"]
        assert geom["type"] == "MultiPolygon"
        geom["coordinates"][1][0].pop()

    _edit_geojson(county_dir, edit)
    got = _problems(county_dir)
    assert len(got) == 1
    assert "网格 FN-06 的第 2 个多边形的外圈没有闭合" in got[0]


def test_two_grids_with_the_same_polygon_are_refused(county_dir: Path) -> None:
    def edit(features: list[dict[str, Any]]) -> None:
        _, a = _feature(features, "DJ-03")
        _, b = _feature(features, "DJ-04")
        ring = a["geometry"]["coordinates"][0]
        # the same polygon started at another corner and drawn the other way round
        b["geometry"] = {"type": "Polygon",
                         "coordinates": [[*ring[2:-1], *ring[:3]][::-1]]}

    _edit_geojson(county_dir, edit)
    features = json.loads((county_dir / "boundaries.geojson").read_text("utf-8"))["features"]
    i, _ = _feature(features, "DJ-03")
    j, _ = _feature(features, "DJ-04")
    assert _problems(county_dir) == [
        f"boundaries.geojson 第 {j} 个区域：网格 DJ-04 的边界和网格 DJ-03（第 {i} 个区域）"
        "完全一样，是不是复制错了？"
    ]


def test_csv_row_with_missing_or_extra_columns_is_refused(county_dir: Path) -> None:
    with (county_dir / "places.csv").open("a", encoding="utf-8") as f:
        f.write("FN-01,机械厂宿舍,1-6\n")  # row 128: the empty cells' commas were lost
        f.write("FN-01,新村,东区,小区,1-4,5\n")  # row 129: an unquoted comma
        f.write("FN-01,机械厂二号院,,小区,1-4,,\n")  # row 130: trailing empty cells are fine
    head = "表头有 5 列（grid、place、aliases、kind、numbers）"
    hint = "是不是少了或多了逗号？单元格里有逗号要用英文引号括起来"
    assert _problems(county_dir) == [
        f"places.csv 第 128 行：这一行有 3 列，{head}；{hint}",
        f"places.csv 第 129 行：这一行有 6 列，{head}；{hint}",
    ]


def test_trailing_comma_in_the_header_is_not_a_column(county_dir: Path) -> None:
    path = county_dir / "places.csv"
    lines = path.read_text("utf-8").splitlines()
    path.write_text("\n".join([lines[0] + ",", *lines[1:]]) + "\n", "utf-8")
    assert len(load_county_dir(county_dir).places) == 126


def test_xlsx_rows_are_not_counted_like_csv(county_dir: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    rows = _places(county_dir)
    for r in rows:
        ws.append(r)
    ws.append(["FN-01", "机械厂宿舍"])  # no commas to lose in a sheet: the rest is just empty
    ws.cell(row=2, column=7, value="备注: 新修")  # a notes column the office keeps
    (county_dir / "places.csv").unlink()
    wb.save(county_dir / "places.xlsx")
    assert len(load_county_dir(county_dir).places) == len(rows)


# --- 3. phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("phone", "reason"), [
    ("12345", "只有 5 位，手机号应为 11 位"),
    ("1390357010", "只有 10 位，手机号应为 11 位"),
    ("139035701011", "有 12 位，手机号应为 11 位"),
    ("35701", "只有 5 位（手机号 11 位，座机至少 7 位）"),
    ("0357-7010101-88888", "有 16 位，最多 15 位"),
    ("call me", "只能填数字"),
])  # fmt: skip
def test_bad_phone_says_what_is_wrong(county_dir: Path, phone: str, reason: str) -> None:
    _edit_yaml(county_dir, lambda doc: _grid(doc, "FN-02")["workers"][0].update(phone=phone))
    got = _problems(county_dir)
    assert got[0].endswith(f"网格 FN-02 的网格员郑波：电话格式不对，{reason}")
    assert phone not in got[0]  # the number itself is never repeated


@pytest.mark.parametrize("phone", ["139 0357 9901", "+86 139-0357-9902", "0357-7010101",
                                   "7010101", "(0357) 701 0101"])
def test_good_phones_pass(county_dir: Path, phone: str) -> None:
    _edit_yaml(county_dir, lambda doc: _grid(doc, "FN-02")["workers"][0].update(phone=phone))
    fn2 = next(g for g in load_county_dir(county_dir).grids if g.code == "FN-02")
    assert fn2.workers[0].phone.isdigit()


def _everything_said(d: Path) -> str:
    """What the CLI prints and the desk shows (its reason column) for a refused directory."""
    with pytest.raises(CountyFileError) as e:
        load_county_dir(d)
    return "\n".join([str(e.value), *(p.reason for p in e.value.problems)])


def test_no_message_repeats_a_phone_from_the_files(county_dir: Path) -> None:
    def staff(doc: dict[str, Any]) -> None:
        _grid(doc, "FN-02")["workers"][0]["phone"] = "1390357900"  # a digit short
        _grid(doc, "FN-03")["leader"]["phone"] = "手机 13903579001"

    _edit_yaml(county_dir, staff)
    said = _everything_said(county_dir)
    assert "网格 FN-02 的网格员郑波：电话格式不对，只有 10 位" in said
    assert "电话格式不对，只能填数字" in said
    assert "1390357900" not in said and "13903579001" not in said

    shutil.copy(SAMPLE / "grids.yaml", county_dir / "grids.yaml")
    with (county_dir / "places.csv").open("a", encoding="utf-8") as f:
        f.write("13903579002,幽灵小区,,小区,139 0357 9003\n")  # row 128: a phone pasted twice
    (county_dir / "households.csv").write_text(
        "grid,address,name,phone\n"
        "13903579004,南关村1号,甲,17000000001\n"  # row 2: the columns mixed up
        "FN-02,南关村2号,乙,1390357900\n", encoding="utf-8")  # row 3: a digit short
    (county_dir / "partners.csv").write_text(
        "code,name,kind,serves,aliases,contact,phone\n"
        "A1,甲物业,13903579006,13903579005,,张经理,139-0357-900\n", encoding="utf-8")
    said = _everything_said(county_dir)
    assert "places.csv 第 128 行：网格 （号码已隐去） 不存在" in said
    assert "households.csv 第 3 行：电话格式不对，只有 10 位，手机号应为 11 位" in said
    assert "partners.csv 第 2 行：电话格式不对" in said
    for phone in ("13903579002", "139 0357 9003", "13903579004", "17000000001", "1390357900",
                  "13903579005", "13903579006", "139-0357-900"):
        assert phone not in said, phone

    # a YAML typo on a staff line: the line is quoted, its number is not
    for name in ("grids.yaml", "places.csv", "households.csv", "partners.csv"):
        shutil.copy(SAMPLE / name, county_dir / name)
    line = _replace_line(county_dir / "grids.yaml", '- {name: 王建军, phone: "13903570101"}',
                         '- {name: 王建军 phone: "13903570101"}')
    said = _everything_said(county_dir)
    assert f'grids.yaml 第 {line} 行：“- {{name: 王建军 phone: "（号码已隐去）"}}”第 29 列' in said
    assert "13903570101" not in said


@pytest.fixture
def english() -> Iterator[None]:
    use_language("en")
    try:
        yield
    finally:
        use_language("zh")  # the process default for the tests after this one


def test_language_en_gives_the_english_messages(county_dir: Path, english: None) -> None:
    with (county_dir / "places.csv").open("a", encoding="utf-8") as f:
        f.write("ZZ-01,幽灵小区,,,\n")
    (county_dir / "households.csv").write_text(
        "grid,address,name,phone\nFN-02,南关村2号,乙,1390357900\n", encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(county_dir)
    assert str(e.value).splitlines() == [
        "2 problem(s) in county files:",
        "  places.csv row 128: unknown grid 'ZZ-01' (not in grids.yaml)",
        "  households.csv row 2: phone is too short: 10 digits, a mobile number has 11",
    ]
    report = ImportReport("浮山县天坛镇", 3, changed=False,
                          tables={"grids": Counts(created=1, unchanged=24)})
    assert report.summary() == (
        "浮山县天坛镇: county version 3 (nothing changed, version kept)\n"
        "  grids        1 new, 0 updated, 0 deactivated, 24 unchanged")
    use_language("zh")
    assert report.summary() == ("浮山县天坛镇：数据版本 3（没有变化，版本号不变）\n"
                                "  网格：新增 1，更新 0，停用 0，未变 24")


# --- 4. the county version ---------------------------------------------------------------------


async def _import(sm: async_sessionmaker[AsyncSession], data: CountyData) -> ImportReport:
    async with sm() as s, s.begin():
        return await import_county(s, data)


async def _version(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as s:
        return await county_version(s)


async def test_version_moves_only_when_the_county_changes(
    sm: async_sessionmaker[AsyncSession], county_dir: Path
) -> None:
    assert (await _import(sm, load_county_dir(county_dir))).version == 1
    again = await _import(sm, load_county_dir(county_dir))
    assert (again.version, again.changed, await _version(sm)) == (1, False, 1)
    assert "数据版本 1（没有变化，版本号不变）" in again.summary()

    # the same files from another directory are the same county
    moved = county_dir.parent / "moved"
    shutil.copytree(county_dir, moved)
    assert (await _import(sm, load_county_dir(moved))).version == 1

    rows = _places(county_dir)
    rows[1][2] = "府前大街"  # one alias on one place
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (county_dir / "places.csv").write_text(buf.getvalue(), "utf-8")
    changed = await _import(sm, load_county_dir(county_dir))
    assert changed.tables["places"].updated == 1
    assert (changed.version, changed.changed, await _version(sm)) == (2, True, 2)
    assert "数据版本 2\n" in changed.summary()
    assert (await _import(sm, load_county_dir(county_dir))).version == 2

    _edit_yaml(county_dir, lambda doc: doc.update(name="浮山县天坛镇人民政府"))
    assert (await _import(sm, load_county_dir(county_dir))).version == 3


async def test_empty_holidays_on_an_empty_calendar_is_no_change(
    sm: async_sessionmaker[AsyncSession], county_dir: Path
) -> None:
    await _import(sm, load_county_dir(county_dir))
    (county_dir / "holidays.yaml").unlink()
    assert (await _import(sm, load_county_dir(county_dir))).version == 1
    (county_dir / "holidays.yaml").write_text("off: [2035-01-01]\n", "utf-8")
    assert (await _import(sm, load_county_dir(county_dir))).version == 2


# --- the command line, as an operator runs it ---------------------------------------------------


@pytest.mark.slow
def test_cli_import(tmp_path: Path, county_dir: Path) -> None:
    def run(d: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run_bot.py", "import", str(d)], cwd=REPO, text=True,
            capture_output=True, timeout=60,
            env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
                 "SAMPLE_DATA": "false"})

    first = run(county_dir)
    assert first.returncode == 0, first.stderr
    assert "数据版本 1\n" in first.stdout
    again = run(county_dir)
    assert again.returncode == 0, again.stderr
    assert "数据版本 1（没有变化，版本号不变）" in again.stdout

    line = _replace_line(county_dir / "grids.yaml", "name: 鼓楼", "name 鼓楼")
    broken = run(county_dir)
    assert broken.returncode == 1
    assert broken.stderr.splitlines() == [
        "导入失败，未做任何修改：",
        "数据文件有 2 处问题：",
        f"  grids.yaml 第 {line} 行：{YAML_TYPO}",
        f"  {SKIPPED}126 行和 25 个区域{NOT_CHECKED}",
    ]
