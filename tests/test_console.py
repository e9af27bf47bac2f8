"""The quick start's console: the README walk-through, piped into `run_bot.py console`."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import REPO, clean_env

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it


def console(db: Path, script: str) -> str:
    """Pipe `script` into `run_bot.py console` on the SQLite file `db`; its output."""
    done = subprocess.run(
        [sys.executable, "run_bot.py", "console"], cwd=REPO, input=script, text=True,
        capture_output=True, timeout=120,
        env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def query(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def readme_walk_through(heading: str = "### A walk through the console") -> str:
    """The first code block under a README heading, as written."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split(heading, 1)[1]
    block = re.search(r"^```\n(.*?)^```$", section, re.S | re.M)
    assert block, "no code block in the README's console walk-through"
    return block.group(1)


def test_readme_walk_through_takes_a_report_to_closed(tmp_path: Path) -> None:
    walk = readme_walk_through()
    assert "报事 南关村口垃圾" in walk and "/reply m4" in walk
    db = tmp_path / "console.db"
    out = console(db, walk)
    number = re.search(r"已受理，工单号 (FS-\d{8}-\d{4})。已派给南关网格员处理", out)
    assert number, out
    n = number.group(1)
    assert f"【新工单】{n}" in out and "[照片 trash1]" in out
    assert "[#1 接单] [#2 办结]" in out
    assert f"您的工单 {n} 已由网格员" in out
    assert f"工单 {n} 有新进展：下午安排清运" in out
    assert f"工单 {n} 已办结：已清运完毕" in out
    assert "[#11 满意] [#12 基本满意] [#13 不满意]" in out
    assert f"感谢评价！工单 {n} 已结案。" in out
    assert "这一行没有处理成功" not in out
    assert query(db, "select state from tickets") == [("closed",)]
    steps = [r[0] for r in query(
        db, "select to_state from ticket_events where kind = 'transition' order by id")]
    for state in ("acknowledged", "resolved", "closed"):
        assert state in steps, steps
    assert query(db, "select note from ticket_events where note = '下午安排清运'")
    # nothing the walk-through says is taken as a report besides the one report
    assert query(db, "select count(*) from tickets") == [(1,)]


def test_readme_words_only_walk_through_takes_a_report_to_closed(tmp_path: Path) -> None:
    walk = readme_walk_through("### The same story in words only")
    assert "#" not in walk and "/reply" not in walk  # no buttons, no replies
    db = tmp_path / "console.db"
    out = console(db, walk)
    number = re.search(r"已受理，工单号 (FS-\d{8}-\d{4})", out)
    assert number, out
    n = number.group(1)
    assert f"{n}｜待接单" in out
    assert f"您的工单 {n} 已由网格员" in out and f"已接单：{n}" in out
    assert out.count(f"已接单：{n}") == 1  # the card's answer, not twice
    assert f"工单 {n} 有新进展：下午安排清运" in out
    assert f"工单 {n} 已办结：已清运完毕" in out
    assert f"感谢评价！工单 {n} 已结案。" in out
    assert query(db, "select state, satisfaction from tickets") == [("closed", "satisfied")]


def test_console_survives_a_restart_and_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    first = console(db, "报事 南关村路灯坏了\n")
    assert "FS-" in first
    second = console(db, "#99\n/as worker XX-99\n/nonsense\n/my\n")
    assert "没有这个按钮" in second
    assert "没有这个编号" in second
    assert "/as resident [名字]" in second  # unknown commands show the help
    # the first run's ticket is still there (a group is shown numbers and states only)
    assert re.search(r"FS-\d{8}-\d{4}｜已派单", second), second
