"""The command line as an operator uses it: import, route, invite (real subprocesses)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.procs import REPO, clean_env, free_port

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

SAMPLE = REPO / "config" / "sample"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def run(db: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_bot.py", *args], cwd=REPO, input=stdin, text=True,
        capture_output=True, timeout=60,
        env={**clean_env(), "DATABASE_URL": f"sqlite+aiosqlite:///{db}", **env})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def test_import_then_route_jsonl(db: Path) -> None:
    done = run(db, "import", str(SAMPLE), SAMPLE_DATA="false")
    assert done.returncode == 0, done.stderr
    assert "  网格：新增 25，" in done.stdout
    lines = "\n".join(json.dumps(x, ensure_ascii=False) for x in [
        {"text": "南关村路灯坏了"},
        {"text": "锦绣花园的垃圾没人收"},
        {"text": "有3个路灯坏了", "chat_grid": "FN-02"},
        {"text": "这里有个坑", "lat": 0.0, "lon": 0.0},
    ])
    routed = run(db, "route", "--jsonl", stdin=lines + "\n", SAMPLE_DATA="false")
    assert routed.returncode == 0, routed.stderr
    out = [json.loads(x) for x in routed.stdout.splitlines()]
    assert out[0] == {"grid": "FN-02", "status": "routed", "candidates": [],
                      "matched": ["南关村"]}
    assert out[1]["status"] == "ambiguous" and out[1]["grid"] is None
    assert len(out[1]["candidates"]) == 2
    assert out[2]["grid"] == "FN-02" and out[2]["status"] == "routed"
    assert out[3] == {"grid": None, "status": "unknown", "candidates": [], "matched": []}
    again = run(db, "import", str(SAMPLE), SAMPLE_DATA="false")
    assert again.returncode == 0 and "  网格：新增 0，更新 0，" in again.stdout


def test_broken_county_imports_nothing_and_says_where(db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "county"
    shutil.copytree(SAMPLE, broken)
    rows = (broken / "places.csv").read_text(encoding="utf-8").splitlines()
    rows[5] = rows[5].replace(rows[5].split(",")[0], "NO-SUCH", 1)
    (broken / "places.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = run(db, "import", str(broken), SAMPLE_DATA="false")
    assert done.returncode == 1
    assert "places.csv 第 6 行：网格 NO-SUCH 不存在" in done.stderr
    assert "未做任何修改" in done.stderr
    if db.exists():
        with sqlite3.connect(db) as con:
            tables = {r[0] for r in con.execute("select name from sqlite_master")}
            if "grids" in tables:
                assert con.execute("select count(*) from grids").fetchone() == (0,)


def invite_code(out: str) -> str:
    found = re.search(r"^邀请码：(\S+) ", out, re.M)
    assert found, out
    return found.group(1)


def test_invite_prints_a_code_and_refuses_unknown_grids(db: Path) -> None:
    done = run(db, "invite", "--role", "worker", "--grid", "fn-02",
               TELEGRAM_BOT_USERNAME="fushan_grid_bot")
    assert done.returncode == 0, done.stderr
    code = invite_code(done.stdout)
    with sqlite3.connect(db) as con:
        row = con.execute("select role, used_at, expires_at from invites where code = ?",
                          (code,)).fetchone()
    assert row[:2] == ("worker", None)
    expires = datetime.fromisoformat(row[2]).replace(tzinfo=UTC).astimezone(SHANGHAI)
    assert done.stdout.splitlines()[0] == (f"邀请码：{code} 角色：网格员 范围：南关网格 "
                                           f"有效期至：{expires:%Y-%m-%d %H:%M}（北京时间）")
    assert f"Telegram：打开 https://t.me/fushan_grid_bot?start={code}" in done.stdout
    bad = run(db, "invite", "--role", "worker", "--grid", "FN-99")
    assert bad.returncode == 1 and bad.stdout == ""
    assert "没有找到网格编号 FN-99（或已停用）" in bad.stderr
    assert "Traceback" not in bad.stderr
    gone = run(db, "invite", "--role", "coordinator", "--community", "XX")
    assert gone.returncode == 1 and "没有找到社区编号 XX（或已停用）" in gone.stderr
    missing = run(db, "invite", "--role", "coordinator")
    assert missing.returncode == 2 and missing.stdout == ""
    assert "--community" in missing.stderr


def test_invite_time_follows_the_configured_timezone(db: Path) -> None:
    done = run(db, "invite", "--role", "centre", TIMEZONE="Asia/Urumqi")
    assert done.returncode == 0, done.stderr
    code = invite_code(done.stdout)
    with sqlite3.connect(db) as con:
        (stored,) = con.execute("select expires_at from invites where code = ?",
                                (code,)).fetchone()
    local = datetime.fromisoformat(stored).replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Urumqi"))
    assert f"有效期至：{local:%Y-%m-%d %H:%M}（Asia/Urumqi）" in done.stdout
    # no name and no token: the way in on Telegram is the /start command
    assert f"Telegram：私聊机器人，发送 /start {code}" in done.stdout


def test_invite_without_telegram_still_gives_a_code(db: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: Telegram unreachable
    done = run(db, "invite", "--role", "centre", TELEGRAM_BOT_TOKEN="123:ABC",
               TELEGRAM_API_BASE=closed)
    assert done.returncode == 0, done.stderr
    code = invite_code(done.stdout)
    assert "角色：指挥中心工作人员 范围：指挥中心" in done.stdout
    assert f"/start {code}" in done.stdout
    assert "没能向 Telegram 查询机器人用户名" in done.stderr
    assert "123:ABC" not in done.stdout + done.stderr


def test_invite_gives_one_way_in_per_channel_that_is_on(db: Path) -> None:
    done = run(db, "invite", "--role", "worker", "--grid", "FN-02",
               TELEGRAM_BOT_USERNAME="fushan_grid_bot", WECOM_CORP_ID="ww1",
               WECOM_SECRET="s", WECOM_AGENT_ID="1000002", WECOM_TOKEN="t",
               WECOM_AES_KEY="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
               BRIDGE_SECRET="0123456789abcdef-bridge")
    assert done.returncode == 0, done.stderr
    code = invite_code(done.stdout)
    assert f"https://t.me/fushan_grid_bot?start={code}" in done.stdout
    assert f"企业微信：在应用“网格报事助手”里发送 {code}" in done.stdout
    assert f"消息桥：通过连接器私聊发送 /start {code}" in done.stdout


def test_serve_without_a_token_says_what_to_do(db: Path) -> None:
    done = run(db)  # `python run_bot.py`: serve is the default
    assert done.returncode == 1
    assert "TELEGRAM_BOT_TOKEN" in done.stderr and "console" in done.stderr
    assert "Traceback" not in done.stderr
