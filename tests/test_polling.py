"""The confirm-after-commit poller, unit by unit (the HTTP story is test_polling_integration)."""

from __future__ import annotations

from aiogram import Dispatcher, Router
from aiogram.methods import SendMessage
from aiogram.types import Message

from handlers.telegram.polling import MAX_TRIES, Poller, chat_key
from tests.fakes import RecordingBot, make_message_update


def dispatcher(fail_on: set[str], seen: list[str]) -> Dispatcher:
    r = Router()

    @r.message()
    async def handle(message: Message) -> None:
        if message.text in fail_on:
            raise RuntimeError("database is locked")
        seen.append(message.text or "")

    dp = Dispatcher()
    dp.include_router(r)
    return dp


def update(bot: RecordingBot, uid: int, chat: int, text: str) -> object:
    return make_message_update(uid, chat, "supergroup", 7, "居民", text=text, bot=bot)


async def test_offset_moves_only_past_what_was_handled() -> None:
    bot, seen = RecordingBot(), []
    poller = Poller(bot, dispatcher({"boom"}, seen))
    batch = [update(bot, 10, -1, "a1"), update(bot, 11, -1, "boom"), update(bot, 12, -1, "a3"),
             update(bot, 13, -2, "b1")]
    failed = await poller.handle(batch)  # type: ignore[arg-type]
    # chat -1 stops at the failure (order within a chat is kept); chat -2 goes on
    assert failed == 1 and seen == ["a1", "b1"]
    assert poller.offset == 11  # 11 and 12 come back; 10 and 13 are confirmed


async def test_an_update_that_keeps_failing_is_dropped_with_an_apology() -> None:
    bot, seen = RecordingBot(), []
    poller = Poller(bot, dispatcher({"boom"}, seen))
    bad = update(bot, 20, -3, "boom")
    for _ in range(MAX_TRIES - 1):
        assert await poller.handle([bad]) == 1  # type: ignore[list-item]
        assert poller.offset == 20
    assert not bot.requests_of(SendMessage)
    assert await poller.handle([bad]) == 0  # type: ignore[list-item]
    assert poller.offset == 21
    sorry = bot.requests_of(SendMessage)
    assert len(sorry) == 1 and sorry[0].chat_id == -3 and "没处理成功" in sorry[0].text


def test_updates_of_one_chat_share_a_lane() -> None:
    bot = RecordingBot()
    assert chat_key(update(bot, 1, -5, "x")) == chat_key(update(bot, 2, -5, "y"))  # type: ignore[arg-type]
    assert chat_key(update(bot, 1, -5, "x")) != chat_key(update(bot, 2, -6, "y"))  # type: ignore[arg-type]
