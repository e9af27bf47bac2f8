from __future__ import annotations

import pytest

from bot.intake.category import categorize
from bot.intake.classify import clean_text, is_report, report_word
from bot.messages import Inbound
from models.enums import Category, ChatKind


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        ("南关小区3号楼门口垃圾堆了好几天", Category.SANITATION),
        ("楼下广场舞太吵了", Category.NOISE),
        ("井盖丢了很危险", Category.SAFETY),
        ("府前街路灯坏了", Category.MUNICIPAL),
        ("邻居长期占用楼道", Category.DISPUTE),
        ("电梯又坏了物业不管", Category.PROPERTY),
        ("你好", Category.OTHER),
        ("楼道里电动车充电", Category.SAFETY),
    ],
)
def test_lexicon(text: str, cat: Category) -> None:
    assert categorize(text) == cat


def ib(text: str, kind: ChatKind = ChatKind.GROUP, **kw: object) -> Inbound:
    return Inbound(channel="telegram", external_id="1", chat_id="1", chat_kind=kind,
                   sender_id="2", sender_name="x", text=text, **kw)  # type: ignore[arg-type]


def test_group_reports_need_a_report_word_mention_or_reply() -> None:
    assert is_report(ib("报事 路灯坏了"))
    assert is_report(ib("#报事 路灯坏了"))
    assert is_report(ib("/report 路灯坏了"))
    assert is_report(ib("路灯坏了", mentions_bot=True))
    assert is_report(ib("路灯坏了", reply_to_bot=True))
    assert not is_report(ib("大家好，今天开会吗"))


def test_private_messages_are_all_reports() -> None:
    assert is_report(ib("路灯坏了", ChatKind.PRIVATE))


def test_clean_text_drops_the_report_word() -> None:
    assert report_word("  报修：水管漏了") == "报修"
    assert clean_text("报修：水管漏了") == "水管漏了"
    assert clean_text("x" * 5000) == "x" * 2000


def test_other_bots_commands_are_not_reports() -> None:
    assert not is_report(ib("/start@grid_intake_bot", mentions_bot=True))
    assert not is_report(ib("/help", ChatKind.PRIVATE))
    assert is_report(ib("/report 楼道灯坏了"))
