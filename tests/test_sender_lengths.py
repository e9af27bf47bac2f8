"""Telegram's length limits are in UTF-16 code units of the rendered text.

The sender talks to the fake Bot API over loopback through a real aiogram Bot; the fake
refuses a caption over 1,024 units or a text over 4,096 (after dropping HTML markup) the way
Telegram does, with 400 "... is too long".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select

from bot.app import build_app
from bot.delivery.outbox import enqueue
from bot.messages import Action, Button, Outbound
from config.settings import Settings
from handlers.telegram.sender import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    TelegramSender,
    split_text,
    utf16_len,
)
from models.enums import ChatKind
from models.tickets import Outbox
from tests.fakes.botapi import FakeBotAPI
from tests.procs import TOKEN

CHAT = 7201
CONE = "🚧"  # U+1F6A7: one character, two UTF-16 units
HEAD = ("【新工单】FS-20260303-0001\n类别：市政设施\n地点：南关村口\n网格：南关网格\n"
        "报事人：王大妈\n内容：")


def card_of_emoji(n: int = 500) -> str:
    head = HEAD + "·" * (86 - len(HEAD))
    return head + CONE * n


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    real = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    yield real
    await real.session.close()


def outbound(text: str, **kw: Any) -> Outbound:
    kw.setdefault("buttons", [[Button("接单", Action("ack", 1)),
                               Button("办结", Action("resolve", 1))]])
    return Outbound("telegram", str(CHAT), ChatKind.PRIVATE, text, **kw)


def refused(api: FakeBotAPI) -> list[str]:
    return [f"{c.method}:{c.status}" for c in api.calls if not c.ok]


def keyboard(call: dict[str, Any]) -> list[str]:
    rows = (call.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


async def test_a_card_of_500_emoji_goes_as_the_photo_then_the_text(api: FakeBotAPI,
                                                                   bot: Bot) -> None:
    text = card_of_emoji()
    assert (len(text), utf16_len(text)) == (586, 1086)  # fits 1,024 characters, not units
    ext = await TelegramSender(bot).send(outbound(text, photos=["AgADphoto1"], reply_to="55"))
    assert refused(api) == []
    photo, message = api.sent(CHAT)
    assert photo["method"] == "sendPhoto" and "caption" not in photo
    assert photo["reply_parameters"]["message_id"] == 55
    assert message["method"] == "sendMessage" and message["text"] == text
    assert keyboard(message) == ["接单", "办结"]
    assert ext == str(message["result"]["message_id"])  # a reply to the card finds it


async def test_a_caption_within_1024_units_stays_a_caption(api: FakeBotAPI, bot: Bot) -> None:
    # escaped for HTML this is 2,100 characters; rendered it is 1,024 units
    text = card_of_emoji(0) + "<&>" * 200 + CONE * ((CAPTION_LIMIT - 86 - 600) // 2)
    assert utf16_len(text) == CAPTION_LIMIT
    ext = await TelegramSender(bot).send(outbound(text, photos=["AgADphoto2"]))
    assert refused(api) == []
    [photo] = api.sent(CHAT)
    assert photo["method"] == "sendPhoto" and photo["caption"].endswith(CONE)
    assert "&lt;&amp;&gt;" in photo["caption"] and keyboard(photo) == ["接单", "办结"]
    assert ext == str(photo["result"]["message_id"])

    # one unit more and it no longer fits
    api.calls.clear()
    await TelegramSender(bot).send(outbound(text + "。", photos=["AgADphoto2"]))
    assert refused(api) == []
    assert [m["method"] for m in api.sent(CHAT)[1:]] == ["sendPhoto", "sendMessage"]


async def test_a_long_text_is_split_on_line_boundaries(api: FakeBotAPI, bot: Bot) -> None:
    lines = [f"{i:03d} " + CONE * 30 for i in range(100)]  # 64 units a line, 65 with "\n"
    text = "\n".join(lines)
    assert len(text) < TEXT_LIMIT < utf16_len(text) == 6499
    ext = await TelegramSender(bot).send(outbound(text, reply_to="56"))
    assert refused(api) == []
    first, second = api.sent(CHAT)
    assert utf16_len(first["text"]) <= TEXT_LIMIT and utf16_len(second["text"]) <= TEXT_LIMIT
    # 63 lines are 4,094 units; a 64th would make 4,159
    assert first["text"].split("\n") == lines[:63] and second["text"].split("\n") == lines[63:]
    assert first["reply_parameters"]["message_id"] == 56 and "reply_parameters" not in second
    assert keyboard(first) == [] and keyboard(second) == ["接单", "办结"]
    assert ext == str(second["result"]["message_id"])


async def test_a_single_line_over_the_limit_is_cut_between_code_points(api: FakeBotAPI,
                                                                       bot: Bot) -> None:
    text = CONE * 2500  # 5,000 units on one line
    await TelegramSender(bot).send(outbound(text, buttons=[]))
    assert refused(api) == []
    first, second = api.sent(CHAT)
    assert (first["text"], second["text"]) == (CONE * 2048, CONE * 452)


async def test_the_mention_counts_towards_the_limit(api: FakeBotAPI, bot: Bot) -> None:
    msg = outbound("x" * (TEXT_LIMIT - 2), mention_user_id="7003", mention_name="王大妈",
                   buttons=[])
    await TelegramSender(bot).send(msg)  # "王大妈 " makes it 4,098 units
    assert refused(api) == []
    first, second = api.sent(CHAT)
    assert first["text"] == '<a href="tg://user?id=7003">王大妈</a> ' + "x" * (TEXT_LIMIT - 4)
    assert second["text"] == "xx"


def test_split_text_counts_units_and_keeps_lines_whole() -> None:
    assert split_text("短消息", 10) == ["短消息"]
    assert split_text("ab\ncd\nef", 5) == ["ab\ncd", "ef"]
    assert split_text(CONE * 3, 4) == [CONE * 2, CONE]  # never half a surrogate pair
    assert split_text("abc\n" + "d" * 7, 5, first_limit=3) == ["abc", "ddddd", "dd"]
    assert split_text("", 5) == [""]


async def test_through_the_outbox_the_card_is_delivered_and_remembered(
        api: FakeBotAPI, bot: Bot, loaded_settings: Settings) -> None:
    app = await build_app(loaded_settings, {"telegram": TelegramSender(bot)})
    try:
        async with app.deps.sm() as s, s.begin():
            enqueue(s, outbound(card_of_emoji(), photos=["AgADphoto3"], remember=True))
        assert await app.outbox.run_once() == 1
        async with app.deps.sm() as s:
            row = (await s.scalars(select(Outbox))).one()
        assert refused(api) == []
        _photo, message = api.sent(CHAT)
        assert (row.status, row.attempts) == ("sent", 1)
        assert row.external_message_id == str(message["result"]["message_id"])
    finally:
        await app.close()
