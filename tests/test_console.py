"""The quick start's console: the README walk-through, piped into `run_bot.py console`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.procs import REPO, clean_env

WALK = """\
/as worker FN-02
/as coordinator FN
/as resident 张大爷
/photo trash1
报事 南关村口垃圾堆了好几天没人清
/as worker FN-02
#1
/reply m4 下午安排清运
#2
已清运完毕
/as resident 张大爷
#11
/my
"""


def console(db: Path, script: str) -> str:
    done = subprocess.run(
        [sys.executable, "run_bot.py", "console"], cwd=REPO, input=script, text=True,
        capture_output=True, timeout=120,
        env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_readme_walk_through_takes_a_report_to_closed(tmp_path: Path) -> None:
    out = console(tmp_path / "console.db", WALK)
    number = re.search(r"已受理，工单号 (FS-\d{8}-\d{4})。已派给南关网格员处理", out)
    assert number, out
    n = number.group(1)
    assert f"【新工单】{n}" in out and "[照片 console:trash1]" in out
    assert "[#1 接单] [#2 办结]" in out
    assert f"您的工单 {n} 已由网格员" in out
    assert f"工单 {n} 有新进展：下午安排清运" in out
    assert "[#11 满意] [#12 基本满意] [#13 不满意]" in out
    assert f"感谢评价！工单 {n} 已结案。" in out
    assert f"{n}｜已结案｜南关村口垃圾" in out


def test_console_survives_a_restart_and_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    first = console(db, "报事 南关村路灯坏了\n")
    assert "FS-" in first
    second = console(db, "#99\n/as worker XX-99\n/nonsense\n/my\n")
    assert "没有这个按钮。" in second
    assert "没有这个编号" in second
    assert "/as resident [名字]" in second  # unknown commands show the help
    assert "｜已派单｜南关村路灯坏了" in second  # the first run's ticket is still there
