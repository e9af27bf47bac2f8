"""Settings: where `.env` is read from, relative paths, and values checked at start."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import ROOT, Settings
from tests.procs import REPO, clean_env

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it


def settings(**kw: Any) -> Settings:
    """Settings from these values alone, whatever .env files lie around."""
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def test_language_is_zh_or_en() -> None:
    assert settings().language == "zh"
    assert settings(language=" EN ").language == "en"
    with pytest.raises(ValidationError) as e:
        settings(language="fr")
    assert "LANGUAGE 只能是 zh（中文）或 en（English），不能是 'fr'" in str(e.value)


def test_timezone_must_be_a_zone() -> None:
    assert settings(timezone="Asia/Urumqi").timezone == "Asia/Urumqi"
    for bad in ("Beijing", "", "../etc/passwd"):
        with pytest.raises(ValidationError, match="TIMEZONE"):
            settings(timezone=bad)


def test_relative_paths_are_under_the_project() -> None:
    s = settings(database_url="sqlite+aiosqlite:///data/x.db?mode=rwc",
                 county_dir="config/sample")
    assert s.database_url == f"sqlite+aiosqlite:///{ROOT / 'data' / 'x.db'}?mode=rwc"
    assert s.county_dir == ROOT / "config" / "sample"
    for kept in ("sqlite+aiosqlite:////srv/grid.db", "sqlite+aiosqlite://",
                 "sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://grid@db:5432/grid"):
        assert settings(database_url=kept).database_url == kept


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory of its own: config/settings.py copied (its ROOT is where it lies),
    the rest of the code imported from this repository."""
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    for name in ("__init__.py", "settings.py"):
        shutil.copy(REPO / "config" / name, root / "config" / name)
    (root / "config" / "sample").symlink_to(REPO / "config" / "sample")
    shutil.copy(REPO / "run_bot.py", root / "run_bot.py")
    (root / ".env").write_text(
        "DATABASE_URL=sqlite+aiosqlite:///data/from_root.db\n"
        "TELEGRAM_BOT_USERNAME=root_env_bot\nSAMPLE_DATA=false\n", encoding="utf-8")
    return root


def invite_from(cwd: Path, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(project / "run_bot.py"), "invite", "--role", "centre"],
        cwd=cwd, text=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**clean_env(), "PYTHONPATH": f"{project}:{REPO}"})


def test_env_of_the_project_is_read_from_another_directory(project: Path,
                                                           tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = invite_from(elsewhere, project)
    assert done.returncode == 0, done.stderr
    assert "https://t.me/root_env_bot?start=" in done.stdout
    # the relative DATABASE_URL in the project's .env is the project's database
    assert not (elsewhere / "data").exists()
    with sqlite3.connect(project / "data" / "from_root.db") as con:
        assert con.execute("select count(*) from invites").fetchone() == (1,)

    (elsewhere / ".env").write_text("TELEGRAM_BOT_USERNAME=cwd_env_bot\n", encoding="utf-8")
    done = invite_from(elsewhere, project)
    assert done.returncode == 0, done.stderr
    assert "https://t.me/cwd_env_bot?start=" in done.stdout  # the current directory's wins
    with sqlite3.connect(project / "data" / "from_root.db") as con:
        assert con.execute("select count(*) from invites").fetchone() == (2,)
