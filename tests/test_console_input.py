"""Bad console input gets a short Chinese line; nothing bad is stored; Ctrl-C and EOF leave."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.messages import GeoPoint
from bot.routing.datum import wgs84_to_gcj02
from handlers.console import LOC_USAGE, parse_location, words
from tests.procs import REPO, clean_env
from tests.test_console import console, query

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

IN_NANGUAN = (35.95454, 111.85107)  # inside grid FN-02 (南关), WGS-84


@pytest.mark.parametrize("args", [
    ["abc", "def"], ["35.1"], ["91", "111"], ["35", "181"], ["-91", "0"], ["nan", "111"],
    ["35", "inf"], ["35", "111", "wgs84", "extra"],
])
def test_bad_locations_get_the_usage_line(args: list[str]) -> None:
    assert parse_location(args) == LOC_USAGE


def test_locations_and_datums() -> None:
    assert parse_location(["35.9", "111.8"]) == GeoPoint(35.9, 111.8, "wgs84")
    assert parse_location(["35.9", "111.8", "GCJ02"]) == GeoPoint(35.9, 111.8, "gcj02")
    assert parse_location(["-90", "180"]) == GeoPoint(-90.0, 180.0, "wgs84")
    refused = parse_location(["35.9", "111.8", "bd09"])
    assert isinstance(refused, str) and refused.startswith("不支持坐标系 百度坐标 bd09")


def test_words_survive_a_lone_quote() -> None:
    assert words("it's broken") == ["it's", "broken"]
    assert words("'王 阿姨'") == ["王 阿姨"]
    assert words('"unterminated') == ['"unterminated']


def test_bad_input_is_answered_and_nothing_bad_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    out = console(db, "\n".join([
        "/loc abc def", "/loc 35.1 111.2 bd09", "/loc 91 111", "/loc 35.1 181", "/loc nan inf",
        "/photo it's broken", '/photo "unterminated', "/as resident '王 阿姨",
        "/reply m1 it's", "/as", "/photo",
        "报事 南关村路灯坏了", "",
    ]))
    assert out.count(LOC_USAGE) == 5
    assert "不支持坐标系 百度坐标 bd09" in out
    assert "用法：/as resident" in out and "用法：/photo 名称" in out
    assert "已受理，工单号" in out
    assert "这一行没有处理成功" not in out
    assert query(db, "select count(*) from inbound_log where media like '%location%'") == [(0,)]
    # a restart straight after finds nothing it cannot read
    again = console(db, "报事 南关村口垃圾没人清\n")
    assert "已受理，工单号" in again


def test_a_bad_location_an_older_console_stored_does_not_end_the_session(
        tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    console(db, "/photo p1\n")
    with sqlite3.connect(db) as conn:
        conn.execute("""update inbound_log set media = '[{"kind": "location", "lat": 35.1,
                        "lon": 111.2, "datum": "bd09"}]'""")
    done = subprocess.run(
        [sys.executable, "run_bot.py", "console"], cwd=REPO, text=True, capture_output=True,
        input="报事 南关村路灯坏了\n/as resident 王大妈\n报事 南关村口垃圾没人清\n",
        timeout=120, env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    # the core may still refuse the stored location (and log why); the console says so in
    # one line and goes on with the next one
    assert done.returncode == 0, done.stderr
    first, rest = done.stdout.split("» /as resident 王大妈", 1)
    assert "已受理，工单号" in first or "这一行没有处理成功，请检查后重试。" in first
    assert "已受理，工单号" in rest, done.stdout
    assert "KeyboardInterrupt" not in done.stderr


def test_a_gcj02_location_routes_the_report_after_it(tmp_path: Path) -> None:
    lat, lon = wgs84_to_gcj02(*IN_NANGUAN)
    out = console(tmp_path / "console.db",
                  f"/loc {lat:.6f},{lon:.6f} gcj02\n报事 这里垃圾好几天没人清\n")
    assert "已派给南关网格员处理" in out, out


def start(db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "run_bot.py", "console"], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert proc.stdout is not None
    assert "网格报事助手" in proc.stdout.readline()  # up and reading
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return out, err


def test_ctrl_c_while_waiting_for_input_exits_cleanly(tmp_path: Path) -> None:
    proc = start(tmp_path / "console.db")
    proc.send_signal(signal.SIGINT)
    out, _ = finish(proc)  # stdin is still open: the reader must not hold the exit
    assert "已退出控制台。" in out


def test_ctrl_c_during_a_line_finishes_it_and_twice_leaves_at_once(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    proc = start(db)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("报事 南关村路灯坏了\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith("» 报事")
    proc.send_signal(signal.SIGINT)
    out, _ = finish(proc)
    assert "已退出控制台。" in out
    assert query(db, "select count(*) from tickets") == [(1,)]

    proc = start(db)
    assert proc.stdin is not None
    proc.stdin.write("报事 南关村口垃圾没人清\n")
    proc.stdin.flush()
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    finish(proc)


def test_end_of_input_exits_cleanly(tmp_path: Path) -> None:
    out = console(tmp_path / "console.db", "")
    assert "网格报事助手" in out
