"""Console message numbers: unique per chat for ever, and a reply that can't be placed asks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_console import console, query

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

HEADER = re.compile(r"🤖 → (.+?) \(m(\d+)\)")
CARD = re.compile(r"\(m(\d+)\)\n   【新工单】(FS-\d{8}-\d{4})")


def numbers(out: str) -> list[int]:
    return [int(m.group(2)) for m in HEADER.finditer(out)]


def cards(out: str) -> dict[str, int]:
    """Ticket number -> the message number of its card."""
    return {m.group(2): int(m.group(1)) for m in CARD.finditer(out)}


def counts(db: Path) -> tuple[object, ...]:
    return query(db, "select (select count(*) from outbox), (select count(*) from ticket_events),"
                     " (select count(*) from tickets), (select count(*) from sent_messages)")[0]


def test_a_reply_after_a_restart_reaches_the_ticket_its_card_was_for(tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    first = console(db, "/as worker FN-02\n/as resident 李阿姨\n报事 南关村路灯坏了\n")
    (n1, card1), = cards(first).items()
    second = console(db, "/as resident 王大妈\n报事 南关村口下水道堵了\n"
                         f"/as worker FN-02\n/reply m{card1} 已联系电工明天来修\n")
    # the numbering goes on where the first run stopped: no number is handed out twice
    assert numbers(second) and min(numbers(second)) > max(numbers(first)), second
    (n2, card2), = cards(second).items()
    assert card2 > card1 and n2 != n1
    assert f"工单 {n1} 有新进展：已联系电工明天来修" in second
    assert f"{n2} 有新进展" not in second
    assert query(db, "select t.number from ticket_events e join tickets t on t.id = e.ticket_id"
                     " where e.note = '已联系电工明天来修'") == [(n1,)]
    # the note went to 李阿姨's thread only
    rows = [(chat, json.loads(str(p))) for chat, p in query(
        db, "select chat_id, payload from outbox")]
    told = [(chat, p.get("mention_name")) for chat, p in rows if "已联系电工" in p["text"]]
    assert told == [("group-1", "李阿姨")], told


def test_unknown_ambiguous_and_unreachable_references_ask_and_send_nothing(
        tmp_path: Path) -> None:
    db = tmp_path / "console.db"
    first = console(db, "/as worker FN-02\n/as resident 李阿姨\n报事 南关村路灯坏了\n"
                        "/as resident 王大妈\n报事 南关村口下水道堵了\n")
    card = min(cards(first).values())
    acks = [int(m.group(2)) for m in HEADER.finditer(first) if m.group(1) == "群聊"]
    bind = min(numbers(first))  # the worker's welcome, in the worker's private chat
    assert len(acks) == 2 and bind < card
    # what a console before this fix left behind: a number given out again after a restart
    with __import__("sqlite3").connect(db) as conn:
        conn.execute("update outbox set external_message_id = ? where external_message_id = ?",
                     (str(card), str(acks[1])))
    before = counts(db)
    out = console(db, f"/as worker FN-02\n/reply m{card} 下午去看\n/reply m999 下午去看\n"
                      f"/reply m{acks[0]} 下午去看\n/reply 下午去看\n"
                      f"/as resident 张大爷\n/reply m{bind} 你好\n")
    assert f"消息号 m{card} 对应不止一条消息" in out
    assert "没有消息 m999，这次没有发送。" in out
    assert f"消息 m{acks[0]} 在群里，您现在在私聊：请先输入 /group 再回复。" in out
    assert "用法：/reply m消息号 文字" in out
    assert f"消息 m{bind} 是发给 南关网格 网格员 的私聊" in out
    assert "🤖" not in out  # the bot said nothing to anyone
    assert counts(db) == before
