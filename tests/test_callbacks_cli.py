"""`run_bot.py callbacks plan|record` end to end: the real parser and handler on a real SQLite
file holding the sample county (its households.csv is the register), then the real command in
a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from bot.callbacks.sheet import HEADERS, TOP
from config.settings import SAMPLE_DIR, Settings
from handlers.callbacks_cli import run
from models.callbacks import REACHED, UNREACHED, CallbackCall
from run_bot import parser
from tests.conftest import FakeClock, db_url_for
from tests.procs import REPO, clean_env
from tests.test_cli_startup import imported, said

WEEK = "2026-W10"  # the fake clock's week


def _sample_phones() -> set[str]:
    lines = (SAMPLE_DIR / "households.csv").read_text(encoding="utf-8").splitlines()[1:]
    return {line.rsplit(",", 1)[1] for line in lines}


def cli(settings: Settings, clock: FakeClock, *argv: str) -> int:
    return run(settings, parser().parse_args(["callbacks", *argv]), clock)


def _calls(settings: Settings) -> list[CallbackCall]:
    engine = create_engine(settings.database_url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            return [CallbackCall(**row._mapping) for row in conn.execute(
                select(*CallbackCall.__table__.c).order_by(CallbackCall.number))]
    finally:
        engine.dispose()


def _rows(path: Path) -> list[list[object]]:
    ws = load_workbook(path).worksheets[0]
    return [[c.value for c in r] for r in ws.iter_rows(min_row=TOP + 1)]


def test_the_same_week_draws_the_same_households_in_any_database(
        loaded_settings: Settings, clock: FakeClock, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    other_db = tmp_path / "other.db"
    shutil.copyfile(str(make_url(loaded_settings.database_url).database), other_db)
    other = Settings(database_url=db_url_for(other_db), _env_file=None)

    assert cli(loaded_settings, clock, "plan", "--week", WEEK, "-o", str(tmp_path / "a.xlsx")) == 0
    assert cli(other, clock, "plan", "--week", "2026w10", "-o", str(tmp_path / "b.xlsx")) == 0
    assert cli(loaded_settings, clock, "plan", "--week", WEEK, "-o", str(tmp_path / "c.xlsx")) == 0
    first = _rows(tmp_path / "a.xlsx")
    assert first == _rows(tmp_path / "b.xlsx") == _rows(tmp_path / "c.xlsx")

    out = capsys.readouterr().out.splitlines()
    calls = _calls(loaded_settings)
    assert len(calls) == len(first) and {c.week for c in calls} == {WEEK}
    assert out[0].endswith(f"{WEEK} 电话回访 {len(calls)} 户，2 个社区")
    assert out[2].endswith("（本周名单此前已抽取，按原名单输出）")
    phones = _sample_phones()
    assert {str(r[HEADERS.index("电话")]) for r in first} <= phones
    # stratified: the register's 14 households in 10 grids of two communities
    per_grid = [r[HEADERS.index("网格")] for r in first]
    assert len(per_grid) == len(set(per_grid))
    assert not [p for p in phones if p in "\n".join(out)]


def test_record_by_number_once_and_refuse_what_is_unclear(
        loaded_settings: Settings, clock: FakeClock, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(loaded_settings, clock, "plan", "--week", WEEK, "-o", str(tmp_path / "a.xlsx")) == 0
    first, second = _calls(loaded_settings)[:2]
    capsys.readouterr()
    assert cli(loaded_settings, clock, "record", first.number, "社区满意", "网格员基本满意",
               "业委会无", "楼道灯已修", "--by", "王敏") == 0
    assert cli(loaded_settings, clock, "record", first.number, "满意") == 1
    assert cli(loaded_settings, clock, "record", second.number, "挺好") == 1
    assert cli(loaded_settings, clock, "record", "2026W10-999", "满意") == 1
    done = capsys.readouterr()
    assert done.out.splitlines() == [
        f"已登记回访 {first.number}：社区满意，网格员基本满意，业委会无。"]
    err = done.err.splitlines()
    assert err[0].startswith(f"回访 {first.number} 已于 03-03 10:00 登记过")
    assert err[1].startswith("没看懂这条回访结果。请这样写：2026W49-001 满意")
    assert err[2] == "没有找到回访 2026W10-999，请核对回访表上的编号。"
    saved = {c.number: c for c in _calls(loaded_settings)}
    assert (saved[first.number].outcome, saved[first.number].worker_rating,
            saved[first.number].committee_rating, saved[first.number].note,
            saved[first.number].recorded_by) == (REACHED, "fairly", "", "楼道灯已修", "王敏")
    assert saved[second.number].outcome == ""


def test_a_filled_sheet_is_recorded_whole_and_the_unreached_come_back(
        loaded_settings: Settings, clock: FakeClock, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "w10.xlsx"
    assert cli(loaded_settings, clock, "plan", "--week", WEEK, "-o", str(sheet)) == 0
    wb = load_workbook(sheet)
    ws = wb.worksheets[0]
    col = {h: i + 1 for i, h in enumerate(HEADERS)}
    missed, answered = ws.cell(TOP + 1, 1).value, ws.cell(TOP + 2, 1).value
    ws.cell(TOP + 1, col["接通情况"], "未接通")
    for name, value in (("接通情况", "已接通"), ("对社区", "满意"), ("对网格员", "很好"),
                        ("对业委会", "无")):
        ws.cell(TOP + 2, col[name], value)
    wb.save(sheet)
    assert cli(loaded_settings, clock, "record", "--sheet", str(sheet)) == 1
    assert f"第 {TOP + 2} 行（{answered}）" in capsys.readouterr().err
    assert {c.outcome for c in _calls(loaded_settings)} == {""}  # a mistake records nothing

    ws.cell(TOP + 2, col["对网格员"], "基本满意")
    wb.save(sheet)
    assert cli(loaded_settings, clock, "record", "--sheet", str(sheet)) == 0
    saved = {c.number: c for c in _calls(loaded_settings)}
    assert saved[missed].outcome == UNREACHED
    assert (saved[answered].outcome, saved[answered].worker_rating) == (REACHED, "fairly")

    capsys.readouterr()
    assert cli(loaded_settings, clock, "plan", "--week", "2026-W11",
               "-o", str(tmp_path / "w11.xlsx")) == 0
    assert "其中上周未接通再拨 1 户" in capsys.readouterr().out
    week11 = {c.household_id for c in _calls(loaded_settings) if c.week == "2026-W11"}
    assert saved[missed].household_id in week11
    assert saved[answered].household_id not in week11


def _run_bot(*args: str, db: Path, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "run_bot.py", *args], cwd=REPO, text=True, capture_output=True,
        timeout=120, stdin=subprocess.DEVNULL,
        env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})


@pytest.mark.slow
@pytest.mark.parametrize(("args", "says"), [
    (("callbacks", "plan", "--week", "49"), "周次应写成 2026-W49 这样"),
    (("callbacks", "plan", "--week", "2026-W49", "-o", "x.csv"), "要以 .xlsx 结尾"),
    (("callbacks", "record"), "二选一"),
    (("callbacks",), "required"),
])
def test_usage_errors_import_nothing_heavy(tmp_path: Path, args: tuple[str, ...],
                                           says: str) -> None:
    done = _run_bot(*args, db=tmp_path / "g.db", flags=("-X", "importtime"))
    assert done.returncode == 2
    assert says in said(done.stderr)[-1]
    assert not imported(done.stderr) & {"aiogram", "aiohttp", "sqlalchemy", "bot", "handlers"}
    assert not (tmp_path / "g.db").exists()


@pytest.mark.slow
def test_the_real_command_writes_the_sheet(tmp_path: Path) -> None:
    out = tmp_path / "回访表.xlsx"
    done = _run_bot("callbacks", "plan", "--week", "2026-W49", "-o", str(out),
                    db=tmp_path / "g.db")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"已生成 {out}：2026-W49 电话回访 ")
    rows = _rows(out)
    assert rows and all(r[HEADERS.index("电话")] for r in rows)
    assert not [p for p in _sample_phones() if p in done.stdout + done.stderr]
