"""What the console itself prints is Chinese: no English fragments for a county office."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers.console import HELP
from tests.test_console import console

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

# what may stay Latin: commands and their keywords, codes, datums, message and button numbers
ALLOWED = re.compile(
    r"/[a-z]+(?: (?:resident|worker|leader|coordinator|centre)\b)?|\[?wgs84\|gcj02\]?"
    r"|wgs84|gcj02|bd09|\b[A-Z]{2}(?:-\d{2})?\b|\bm\d+|#\d+|FS-\d{8}-\d{4}|m消息号")


def english(line: str) -> str | None:
    rest = ALLOWED.sub("", line)
    return line if re.search(r"[A-Za-z]", rest) else None


def test_help_has_no_english_glosses() -> None:
    assert [ln for ln in HELP.splitlines() if english(ln)] == []


def test_console_lines_are_chinese(tmp_path: Path) -> None:
    out = console(tmp_path / "console.db", "\n".join([
        "/help", "/as worker FN-02", "/as leader FN-02", "/as coordinator FN", "/as centre",
        "/as resident 张大爷", "/as nobody", "/as worker XX-99", "/as worker", "/group",
        "/loc abc", "/loc 35 111 bd09", "/reply", "/reply m99 你好", "/photo", "#5",
        "/nonsense", "/private", "/group", "/as worker FN-02", "/reply m1 好的", "/quit", "",
    ]))
    assert "现在您是 南关网格 的网格员" in out
    assert "现在您是 府南社区 的社区工作人员" in out
    assert "私聊 南关网格 网格员" in out
    own = [ln for ln in out.splitlines()
           if ln.strip() and not ln.startswith(("»", "   "))]
    assert [ln for ln in own if english(ln)] == [], out
