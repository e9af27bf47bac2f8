"""`run_bot.py report` and `run_bot.py brief` end to end, as an operator runs them.

The database holds the 38 tickets of tests/test_rates.py; the figures checked here are ones
that no longer depend on the day the test runs (every deadline involved is in the past).
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.procs import REPO, clean_env
from tests.test_cli_startup import imported, said
from tests.test_rates import build_story

pytestmark = pytest.mark.slow  # real subprocesses: the fast set skips them


@pytest.fixture(scope="module")
def db(sample_county_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report_cli") / "grid.db"
    shutil.copyfile(sample_county_db, path)
    asyncio.run(build_story(f"sqlite+aiosqlite:///{path}"))
    return path


def run(db: Path, *args: str, flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "run_bot.py", *args], cwd=REPO, text=True,
        capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**clean_env(), "SAMPLE_DATA": "false", "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})


def test_report_xlsx_by_grid(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "十一月.xlsx"
    done = run(db, "report", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "grid",
               "--format", "xlsx", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"已生成 {out}：2026年11月，报事 36 件"
    wb = load_workbook(out)
    assert wb.sheetnames == ["汇总", "按网格", "按社区", "按网格员", "说明"]
    ws = wb["按网格"]
    headers = [c.value for c in ws[1]]
    fn02 = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "FN-02")
    row = dict(zip(headers, fn02, strict=True))
    assert row["报事量"] == 11 and row["按时响应"] == 9 and row["应响应"] == 11
    assert row["响应率"] == pytest.approx(9 / 11)


def test_report_csv_by_community(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "by-community.csv"
    done = run(db, "report", "--from", "2026-11-01", "--to", "2026-11-30",
               "--by", "community", "--format", "csv", "-o", str(out))
    assert done.returncode == 0, done.stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0][:3] == ["社区编号", "社区", "报事量"]
    by_code = {r[0]: r for r in rows[1:]}
    assert by_code["FN"][1:3] == ["府南", "25"]
    assert by_code["XC"][1:3] == ["西城", "10"]
    assert rows[-1][0] == "全县合计" and rows[-1][2] == "36"


def test_one_day_is_a_period_too(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "day.csv"
    done = run(db, "report", "--from", "2026-11-01", "--to", "2026-11-01", "--format", "csv",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "报事 1 件" in done.stdout  # the report at 00:30 on 1 November, Shanghai time


@pytest.mark.parametrize("suffix", [".md", ".xlsx"])
def test_brief(db: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"brief{suffix}"
    done = run(db, "brief", "--month", "2026-11", "--community", "fn", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "府南社区2026年11月联席会议简报" in done.stdout
    if suffix == ".md":
        text = out.read_text(encoding="utf-8")
        repeats = text.split("## 重复报事")[1].split("## ")[0]
        assert "| 机械厂家属院3号楼 | 3 | 市政设施 |" in repeats
        assert "南关村" not in repeats  # twice is not a repeat problem
        assert "本月没有登记电话回访结果。" in text
    else:
        wb = load_workbook(out)
        assert wb.sheetnames == ["概况", "类别", "地点", "重复报事", "超期工单", "电话回访"]
        values = [c for row in wb["重复报事"].iter_rows(values_only=True) for c in row]
        assert "机械厂家属院3号楼" in values


def test_an_unknown_community_is_one_line(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "brief.md"
    done = run(db, "brief", "--month", "2026-11", "--community", "ZZ", "-o", str(out))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "生成简报失败：没有编号为 ZZ 的社区（现有：XC、XJ、FN、DJ、WC、QF）"]
    assert not out.exists()


def test_a_missing_database_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    done = run(missing, "report", "--from", "2026-11-01", "--to", "2026-11-30",
               "-o", str(tmp_path / "r.xlsx"))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and "找不到数据库" in done.stderr
    assert not missing.exists()


def test_an_unwritable_file_is_one_line(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "r.csv"
    done = run(db, "report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv",
               "-o", str(out))
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and f"无法写入 {out}" in done.stderr


@pytest.mark.parametrize(("args", "says"), [
    (("report", "--from", "2026-11-30", "--to", "2026-11-01", "-o", "r.xlsx"),
     "--to 不能早于 --from"),
    (("report", "--from", "2026-11-31", "--to", "2026-12-01", "-o", "r.xlsx"),
     "日期应写成 2026-11-01 这样"),
    (("report", "--from", "2026-11-01", "--to", "2026-11-30", "--by", "street", "-o", "r"),
     "invalid choice"),
    (("report", "--from", "2026-11-01", "--to", "2026-11-30"), "-o/--output"),
    (("brief", "--month", "2026-13", "--community", "FN", "-o", "b.md"),
     "月份应写成 2026-11 这样"),
    (("brief", "--month", "2026-11", "--community", "FN", "-o", "b.pdf"),
     "-o 的文件名要以 .xlsx 或 .md 结尾"),
])
def test_usage_errors_exit_2_before_anything_heavy(tmp_path: Path, args: tuple[str, ...],
                                                    says: str) -> None:
    db = tmp_path / "untouched.db"
    done = run(db, *args, flags=("-X", "importtime"))
    assert done.returncode == 2
    lines = said(done.stderr)
    assert lines[0].startswith("usage: run_bot.py")
    assert lines[-1].startswith(f"run_bot.py {args[0]}: error:") and says in lines[-1]
    assert "Traceback" not in done.stderr
    assert not imported(done.stderr) & {"sqlalchemy", "openpyxl", "bot", "handlers", "aiogram"}
    assert not db.exists()
