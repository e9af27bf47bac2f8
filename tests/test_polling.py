"""The confirm-after-commit poller, unit by unit (the HTTP story is test_polling_integration).

Real aiogram Dispatchers are fed real Bot API JSON through `Poller.handle`; the faults
(transient database errors, updates aiogram cannot parse) are in test_poller_faults too.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import pytest
from aiogram import Dispatcher, Router
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendMessage
from aiogram.types import CallbackQuery, Message
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from handlers.telegram import polling
from handlers.telegram.polling import Poller, chat_key, transient
from tests.fakes import RecordingBot, callback_update_json, make_message_update
from tests.fakes.recording import message_update_json
from tests.test_poller_faults import old_poll

SORRY = "没处理成功"


def locked() -> OperationalError:
    return OperationalError("INSERT INTO tickets ...", {}, sqlite3.OperationalError(
        "database is locked"))


class Handlers:
    """A dispatcher whose message handler fails as told, counting what ran.

    `fail[text]` is used up one error a run (then the handler succeeds); `always[text]` is
    raised on every run.
    """

    def __init__(self, fail: dict[str, list[BaseException]] | None = None,
                 always: dict[str, BaseException] | None = None) -> None:
        self.fail = fail or {}
        self.always = always or {}
        self.seen: list[str] = []
        self.runs: dict[str, int] = {}
        self.dp = Dispatcher()
        r = Router()

        @r.message()
        async def on_message(message: Message) -> None:
            text = message.text or ""
            self.runs[text] = self.runs.get(text, 0) + 1
            if text in self.always:
                raise self.always[text]
            if self.fail.get(text):
                raise self.fail[text].pop(0)
            self.seen.append(text)

        @r.callback_query()
        async def on_button(query: CallbackQuery) -> None:
            raise RuntimeError(f"forged press {query.data}")

        self.dp.include_router(r)


def say(uid: int, chat: int, text: str) -> dict[str, Any]:
    return message_update_json(uid, chat, "supergroup", 7, "居民", text=text)


def apologies(bot: RecordingBot) -> list[SendMessage]:
    return [m for m in bot.requests_of(SendMessage) if SORRY in m.text]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "RETRY_FIRST_DELAY", 0.01)


async def test_a_failing_update_never_holds_the_offset_or_reruns_others(
        caplog: pytest.LogCaptureFixture) -> None:
    bot, h = RecordingBot(), Handlers(always={"boom": RuntimeError("forged")})
    poller = Poller(bot, h.dp)
    batch = [say(10, -1, "a1"), say(11, -1, "boom"), say(12, -1, "a3"), say(13, -2, "b1")]
    with caplog.at_level(logging.INFO, logger="handlers.telegram.polling"):
        assert await poller.handle(batch) == 1
    # chat -1 keeps its order and goes on past the failure; chat -2 is not held up
    assert h.seen == ["a1", "a3", "b1"]
    assert h.runs == {"a1": 1, "boom": 1, "a3": 1, "b1": 1}  # deterministic: tried once
    assert poller.offset == 14  # past the whole batch, the failed update included
    sorry = apologies(bot)
    assert len(sorry) == 1 and sorry[0].chat_id == -1
    assert sorry[0].reply_parameters.message_id == 11
    failures = [r for r in caplog.records if r.exc_info]
    assert len(failures) == 1 and "update 11 failed; skipping it" in failures[0].getMessage()
    assert poller.health.skipped == 1

    # the next batch runs only what is new: nothing of the first batch again
    assert await poller.handle([say(14, -2, "b2")]) == 0
    assert h.seen == ["a1", "a3", "b1", "b2"] and h.runs["a1"] == 1
    assert poller.offset == 15 and len(apologies(bot)) == 1


async def test_a_forged_press_is_answered_once_and_skipped() -> None:
    bot, h = RecordingBot(), Handlers()
    poller = Poller(bot, h.dp)
    press = callback_update_json(30, 8, "t1:cat:1", 8, 99, chat_type="private")
    assert await poller.handle([press, say(31, -4, "report")]) == 1
    assert h.seen == ["report"] and poller.offset == 32
    answers = bot.requests_of(AnswerCallbackQuery)
    assert len(answers) == 1 and answers[0].callback_query_id == "cbq-30-8"
    assert SORRY in answers[0].text and answers[0].show_alert is True


async def test_a_transient_database_error_is_retried_in_place(
        caplog: pytest.LogCaptureFixture) -> None:
    bot, h = RecordingBot(), Handlers(fail={"report": [locked(), locked()]})
    poller = Poller(bot, h.dp)
    with caplog.at_level(logging.INFO, logger="handlers.telegram.polling"):
        assert await poller.handle([say(40, -5, "report"), say(41, -6, "other")]) == 0
    assert h.runs == {"report": 3, "other": 1} and sorted(h.seen) == ["other", "report"]
    assert poller.offset == 42 and apologies(bot) == [] and poller.health.skipped == 0
    retries = [r.getMessage() for r in caplog.records]
    assert sum("update 40 failed (OperationalError: database is locked)" in m
               for m in retries) == 2
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_transient_error_that_persists_gives_up_after_three_tries(
        caplog: pytest.LogCaptureFixture) -> None:
    bot, h = RecordingBot(), Handlers(always={"report": locked()})
    poller = Poller(bot, h.dp)
    with caplog.at_level(logging.INFO, logger="handlers.telegram.polling"):
        assert await poller.handle([say(50, -7, "report")]) == 1
    assert h.runs["report"] == polling.RETRY_TRIES == 3
    assert poller.offset == 51 and len(apologies(bot)) == 1
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert tracebacks[0].getMessage() == "update 50 failed 3 times; skipping it"


async def test_no_new_try_once_the_retry_window_has_passed(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # a locked SQLite file answers only after its busy timeout: by then it is too late to retry
    monkeypatch.setattr(polling, "RETRY_WINDOW", 0.2)
    runs: list[int] = []
    r = Router()

    @r.message()
    async def slow_then_locked(message: Message) -> None:
        runs.append(message.message_id)
        await asyncio.sleep(0.3)
        raise locked()

    dp = Dispatcher()
    dp.include_router(r)
    bot = RecordingBot()
    with caplog.at_level(logging.INFO, logger="handlers.telegram.polling"):
        assert await Poller(bot, dp).handle([say(55, -7, "report")]) == 1
    assert runs == [55] and len(apologies(bot)) == 1
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        "update 55 failed; skipping it"]


async def test_an_update_aiogram_cannot_parse_is_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    bot, h = RecordingBot(), Handlers()
    poller = Poller(bot, h.dp)
    with caplog.at_level(logging.INFO, logger="handlers.telegram.polling"):
        assert await poller.handle([old_poll(60, -8), say(61, -9, "after")]) == 1
    assert h.seen == ["after"] and poller.offset == 62
    assert apologies(bot) == [] and poller.health.skipped == 1
    [line] = [r.getMessage() for r in caplog.records if "cannot be parsed" in r.getMessage()]
    assert line.startswith("update 60 (message) cannot be parsed by aiogram 3.")
    assert "message.poll" in line and "周末去哪" not in line  # where, not what was written
    assert not [r for r in caplog.records if r.exc_info]


async def test_run_fetches_raw_json_and_confirms_on_stop() -> None:
    bot, h = RecordingBot(), Handlers()
    stop = asyncio.Event()
    poller = Poller(bot, h.dp, timeout=1)
    bot.session.queue_result(polling.RawUpdates, [say(70, -1, "x"), old_poll(71, -1)])
    bot.session.queue_result(polling.RawUpdates, [])  # the final confirmation
    original = h.dp.feed_update

    async def feed_then_stop(bot_: Any, update: Any, **kw: Any) -> Any:
        stop.set()  # stop once this batch is handled
        return await original(bot_, update, **kw)

    h.dp.feed_update = feed_then_stop  # type: ignore[method-assign]
    await poller.run(stop)
    fetches = bot.requests_of(polling.RawUpdates)
    assert [(f.offset, f.limit) for f in fetches] == [(None, None), (72, 1)]
    assert bot.requests_of(GetUpdates) == []  # aiogram's parsing getUpdates is never used
    assert h.seen == ["x"] and poller.health.skipped == 1  # 71 has nothing aiogram can read
    assert poller.health.last_ok is not None


def test_updates_of_one_chat_share_a_lane() -> None:
    bot = RecordingBot()
    assert chat_key(make_message_update(1, -5, "supergroup", 7, "x", "x", bot=bot)) == \
        chat_key(make_message_update(2, -5, "supergroup", 8, "y", "y", bot=bot))
    assert chat_key(make_message_update(1, -5, "supergroup", 7, "x", "x", bot=bot)) != \
        chat_key(make_message_update(2, -6, "supergroup", 7, "y", "y", bot=bot))


def test_only_database_hiccups_count_as_transient() -> None:
    assert transient(locked())
    assert transient(sqlite3.OperationalError("database is locked"))
    dropped = DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert transient(dropped)
    refused = OperationalError("connect", {}, Exception("server closed the connection"))
    assert transient(refused)
    # deterministic: the same update would fail the same way again
    assert not transient(OperationalError("SELECT", {}, sqlite3.OperationalError(
        "no such table: tickets")))
    assert not transient(ProgrammingError("SELECT", {}, Exception("syntax error")))
    assert not transient(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not transient(RuntimeError("database is locked"))
    # after the core committed: a rerun would repeat what was done
    assert not transient(TelegramNetworkError(method=None, message="timeout"))  # type: ignore[arg-type]
