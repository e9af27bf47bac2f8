"""Starting the command line: what it imports, usage errors, and start failures an operator
can fix (one line on stderr, no traceback). Real subprocesses; nothing here measures time.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.people.onboarding import INVITE_SCOPE
from run_bot import INVITE_NEEDS
from tests.procs import REPO, clean_env, free_port

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it


def run(*args: str, flags: tuple[str, ...] = (), db: Path | None = None,
        **env: str) -> subprocess.CompletedProcess[str]:
    extra = {"DATABASE_URL": f"sqlite+aiosqlite:///{db}"} if db else {}
    return subprocess.run(
        [sys.executable, *flags, "run_bot.py", *args], cwd=REPO, text=True,
        capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**clean_env(), "SAMPLE_DATA": "false", **extra, **env})


def imported(stderr: str) -> set[str]:
    """Top-level packages a `python -X importtime` run imported."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def said(stderr: str) -> list[str]:
    """stderr without -X importtime's lines: what the operator reads."""
    return [x for x in stderr.splitlines() if not x.startswith("import time:")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "startup.db"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_cli_table_of_invite_scopes_is_the_core_one() -> None:
    assert {role.value: needs for role, needs in INVITE_SCOPE.items()} == INVITE_NEEDS


@pytest.mark.parametrize("args", [
    ("invite", "--bogus"),
    ("invite", "--role", "worker"),  # a worker's invite needs --grid
    ("invite", "--role", "coordinator", "--grid", "FN-02"),
    ("serve", "--bogus"),
    ("no-such-command",),
])
def test_usage_errors_answer_on_stderr_without_platform_libraries(args: tuple[str, ...]) -> None:
    done = run(*args, flags=("-X", "importtime"))
    assert done.returncode == 2
    assert done.stdout == ""
    lines = said(done.stderr)
    assert lines[0].startswith("usage: run_bot.py")
    assert lines[-1].startswith("run_bot.py")
    assert "error:" in lines[-1]
    assert "Traceback" not in done.stderr
    names = imported(done.stderr)
    assert "pydantic" in names  # the check sees imports at all
    assert not names & {"aiogram", "aiohttp", "sqlalchemy", "bot", "handlers"}


def test_a_missing_scope_says_which_option(db: Path) -> None:
    done = run("invite", "--role", "leader", db=db)
    assert done.returncode == 2
    assert "--grid" in said(done.stderr)[-1] and "FN-02" in said(done.stderr)[-1]
    assert not db.exists()  # refused before anything was opened


@pytest.mark.parametrize("env", [{}, {"TELEGRAM_BOT_USERNAME": "fushan_grid_bot"}])
def test_invite_without_a_token_does_not_import_aiogram(db: Path, env: dict[str, str]) -> None:
    done = run("invite", "--role", "centre", flags=("-X", "importtime"), db=db, **env)
    assert done.returncode == 0, said(done.stderr)
    assert "邀请码：" in done.stdout
    names = imported(done.stderr)
    assert "sqlalchemy" in names and "aiogram" not in names


def test_invite_with_a_token_asks_telegram_through_aiogram(db: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    done = run("invite", "--role", "centre", flags=("-X", "importtime"), db=db,
               TELEGRAM_BOT_TOKEN="123:ABC", TELEGRAM_API_BASE=closed)
    assert done.returncode == 0, said(done.stderr)
    assert "aiogram" in imported(done.stderr)


def test_serve_without_a_token_answers_before_importing_aiogram(db: Path) -> None:
    done = run("serve", flags=("-X", "importtime"), db=db)
    assert done.returncode == 1
    assert said(done.stderr) == [said(done.stderr)[0]]
    assert "TELEGRAM_BOT_TOKEN" in done.stderr and "console" in done.stderr
    assert "aiogram" not in imported(done.stderr)


def test_a_bad_setting_is_one_line_naming_it(db: Path) -> None:
    done = run("invite", "--role", "centre", db=db, LANGUAGE="fr")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "配置有误 / invalid setting: LANGUAGE 只能是 zh（中文）或 en（English），不能是 'fr'"]
    assert not db.exists()


def test_unreachable_telegram_is_one_line(db: Path) -> None:
    done = run("serve", db=db, TELEGRAM_BOT_TOKEN="123:ABC",
               TELEGRAM_API_BASE=f"http://127.0.0.1:{free_port()}",  # nothing listens
               HTTP_HOST="127.0.0.1", HTTP_PORT=str(free_port()))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("启动失败：连不上 Telegram（127.0.0.1:")
    assert "连接被拒绝" in lines[0] and "TELEGRAM_API_BASE" in lines[0]
    assert "123:ABC" not in done.stderr


def test_busy_http_port_is_one_line(db: Path, busy_port: int) -> None:
    done = run("serve", flags=("-X", "importtime"), db=db, TELEGRAM_BOT_TOKEN="123:ABC",
               TELEGRAM_API_BASE=f"http://127.0.0.1:{free_port()}",
               HTTP_HOST="127.0.0.1", HTTP_PORT=str(busy_port))
    assert done.returncode == 1
    assert said(done.stderr) == [
        f"启动失败：HTTP 端口 127.0.0.1:{busy_port} 已被占用（可能已有一个实例在运行），"
        f"请先停掉它或改 HTTP_PORT / port 127.0.0.1:{busy_port} is already in use"]
    assert "aiogram" not in imported(done.stderr)
    assert not db.exists()  # checked before the database or Telegram
