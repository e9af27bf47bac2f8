"""The console's group behaves like a real group: only reports become tickets."""

from __future__ import annotations

import io
import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from config.settings import Settings
from handlers.console import HELP, MENTION, mentioned, run_console

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it


async def chat(settings: Settings, script: str) -> str:
    out = io.StringIO()
    await run_console(settings, io.StringIO(script), out)
    return out.getvalue()


def tickets(settings: Settings) -> list[tuple[str, str]]:
    path = make_url(settings.database_url).database
    assert path
    with sqlite3.connect(Path(path)) as conn:
        return conn.execute("select reporter_name, text from tickets order by id").fetchall()


def test_mention_is_recognised_and_taken_out_of_the_text() -> None:
    assert mentioned(f"{MENTION} 南关村路灯坏了") == (True, "南关村路灯坏了")
    assert mentioned("＠网格报事助手南关村路灯坏了") == (True, "南关村路灯坏了")
    assert mentioned("@张大爷 路灯坏了") == (False, "@张大爷 路灯坏了")
    assert MENTION in HELP


async def test_only_mentions_report_words_and_replies_become_tickets(
        loaded_settings: Settings) -> None:
    out = await chat(loaded_settings, "\n".join([
        "今天天气不错，大家吃了吗",
        "南关村的路灯是不是又坏了",  # talk about a problem, not to the bot
        "/photo p1 看这个",
        f"{MENTION} 谢谢",
        f"{MENTION} 南关村路灯坏了三天了",
        "/as resident 王大妈",
        "投诉 南关村口下水道堵了",
        "/as resident 孙老师",
        "/reply m1 府前街23号的井盖也丢了",
        "",
    ]))
    assert "这一行没有处理成功" not in out
    got = tickets(loaded_settings)
    assert [name for name, _ in got] == ["张大爷", "王大妈", "孙老师"], (got, out)
    assert got[0][1].startswith("南关村路灯坏了三天了") and MENTION not in got[0][1]
    assert "下水道" in got[1][1] and "井盖" in got[2][1]
    assert len(re.findall(r"已受理，工单号", out)) == 3
    assert "天气" not in "".join(text for _, text in got)
