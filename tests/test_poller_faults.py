"""One bad update must not hold up the others: poison updates and updates aiogram can't parse.

The in-process tests run the Poller against the fake Bot API over loopback; the rest drive
the real `run_bot.py serve` (long polling) through tests/procs.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from bot.health import Health
from handlers.telegram.polling import Poller, stale_after
from tests.fakes.botapi import FakeBotAPI
from tests.fakes.recording import message_update_json
from tests.procs import TOKEN, Service
from tests.test_polling_integration import (
    GROUP,
    NAMES,
    NUMBER,
    RESIDENT,
    WORKER,
    Chat,
    healthz,
    next_sent,
    served,
    settle,
    texts_to,
)

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

OTHER_GROUP = -1001000999
STRANGER = 7009
SORRY = "抱歉，刚才没处理成功，请稍后再试。"
QUICK = 5.0  # what "held up by no one" means: another chat's report answered within this


def old_poll(update_id: int, chat_id: int, user_id: int = RESIDENT) -> dict[str, Any]:
    """A message carrying a poll as an older Bot API shaped it (aiogram 3.31 requires more)."""
    update = message_update_json(update_id, chat_id, "supergroup", user_id,
                                 NAMES.get(user_id, "居民"), text="x", chat_title="南关村居民群")
    message = update["message"]
    del message["text"]
    message["poll"] = {
        "id": f"poll-{update_id}", "question": "周末去哪？", "total_voter_count": 0,
        "is_closed": False, "is_anonymous": True, "type": "regular",
        "allows_multiple_answers": False,
        "options": [{"text": "公园", "voter_count": 0}, {"text": "河边", "voter_count": 0}]}
    return update


def forged_start(update_id: int, user_id: int = STRANGER) -> dict[str, Any]:
    """/start with a code holding a lone surrogate: no client sends it, and it fails for good."""
    return message_update_json(update_id, user_id, "private", user_id, "陌生人",
                               text="/start \ud800", entities=[
                                   {"type": "bot_command", "offset": 0, "length": 6}])


def report_from(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return message_update_json(update_id, chat_id, "supergroup", RESIDENT, NAMES[RESIDENT], text,
                               chat_title="南关村居民群")


# -- the Poller in process, over HTTP ------------------------------------------------------


@pytest.fixture
async def real_bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    yield bot
    await bot.session.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_poller_over_http_skips_an_unparseable_update(api: FakeBotAPI,
                                                            real_bot: Bot) -> None:
    seen: list[str] = []
    r = Router()

    @r.message()
    async def on_message(message: Message) -> None:
        seen.append(message.text or "")

    dp = Dispatcher()
    dp.include_router(r)
    clock = Clock()
    health = Health(clock).channel("telegram", "polling", success="poll",
                                   stale_after=stale_after(1))
    poller = Poller(real_bot, dp, timeout=1, health=health)
    stop = asyncio.Event()
    api.push_update(old_poll(5, GROUP))
    api.push_update(report_from(6, OTHER_GROUP, "报事 路灯坏了"))
    task = asyncio.create_task(poller.run(stop))
    try:
        await api.wait_confirmed(6, QUICK)
        assert seen == ["报事 路灯坏了"]
        assert health.skipped == 1 and health.last_ok == 1000.0 and health.problem() is None

        # Telegram unreachable: the channel says so, and after 33 s without a poll it is stuck
        api.fail_next("getUpdates", 502, count=1000)
        await api.wait_for_call("getUpdates", lambda c: c.status == 502, QUICK)
        for _ in range(100):  # the fake answered; the poller takes it in a moment later
            if health.last_error:
                break
            await asyncio.sleep(0.01)
        assert health.last_error == "getUpdates: TelegramServerError"
        clock.now += 34
        assert health.problem() == "no successful poll for 34 seconds"
        assert health.report()["ok"] is False
    finally:
        stop.set()
        api._faults.clear()  # let the final confirmation through
        await asyncio.wait_for(task, 10)
    assert [c.params.get("offset") for c in api.calls_of("getUpdates") if c.ok][-1] == 7


# -- the real service ----------------------------------------------------------------------


@pytest.fixture
async def svc(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Service]:
    service = Service(tmp_path, api)
    yield service
    await service.close()


async def test_a_poison_update_is_skipped_once_and_holds_up_no_one(svc: Service,
                                                                   api: FakeBotAPI) -> None:
    await svc.start()
    chat = Chat(api)
    chat.ids = itertools.count(100)

    # one batch: the poison, someone's /help in private and a resident's report in the group
    poison = api.push_update(forged_start(next(chat.ids)))
    helped = chat.say(WORKER, "/help")["update_id"]
    pushed = time.monotonic()
    first = chat.say(RESIDENT, "报事 南关村口的路灯坏了，晚上很黑", group=True)["update_id"]
    await svc.within(api.wait_for_call(
        "getUpdates", lambda c: has_all(c, poison, helped, first), QUICK))
    reply = await next_sent(svc, GROUP, "已受理，工单号", timeout=QUICK)
    assert time.monotonic() - pushed < QUICK
    assert NUMBER.search(reply["text"])
    await next_sent(svc, STRANGER, SORRY, timeout=QUICK)
    await svc.within(api.wait_confirmed(first, QUICK))
    assert api.confirmed_offset > poison

    # the same account keeps at it, once a second; the others are answered every time
    for text in ["报事 南关农贸市场门口垃圾没人清", "报事 南关小学门口井盖丢了"]:
        await asyncio.sleep(1.0)
        start = len(api.sent())
        again = api.push_update(forged_start(next(chat.ids)))
        pushed = time.monotonic()
        other = api.push_update(report_from(next(chat.ids), OTHER_GROUP, text))
        got = await next_sent(svc, OTHER_GROUP, "已受理，工单号", start=start, timeout=QUICK)
        assert time.monotonic() - pushed < QUICK and NUMBER.search(got["text"])
        await svc.within(api.wait_confirmed(max(again, other), QUICK))

    await settle(svc, chat, RESIDENT, group=True)
    await settle(svc, chat, WORKER, group=False)
    # each forged update: fetched once, answered once, one traceback; nothing else ran twice
    assert served(api, poison) == 1
    assert api.sent_texts(STRANGER).count(SORRY) == 3
    assert len(texts_to(api, WORKER, "/my")) == 2  # the batch's /help and the barrier's
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 1
    assert len(texts_to(api, OTHER_GROUP, "已受理，工单号")) == 2
    assert svc.scalar("SELECT count(*) FROM tickets") == 3
    log = svc.current.log()
    assert log.count(f"update {poison} failed; skipping it") == 1
    assert log.count("Traceback") == 3 and log.count("skipping it") == 3

    health = await healthz(svc)
    telegram = health["channels"]["telegram"]
    assert health["ok"] is True and telegram["mode"] == "polling" and telegram["ok"] is True
    assert telegram["skipped_updates"] == 3
    assert telegram["seconds_since_poll"] < 5 and telegram["stale_after_seconds"] == 33


async def test_an_update_aiogram_cannot_parse_does_not_stop_intake(svc: Service,
                                                                   api: FakeBotAPI) -> None:
    await svc.start()
    bad = api.push_update(old_poll(10, GROUP))
    pushed = time.monotonic()
    good = api.push_update(report_from(11, OTHER_GROUP, "报事 南关路的下水道堵了"))
    reply = await next_sent(svc, OTHER_GROUP, "已受理，工单号", timeout=QUICK)
    assert time.monotonic() - pushed < QUICK and NUMBER.search(reply["text"])
    await svc.within(api.wait_confirmed(good, QUICK))
    assert api.confirmed_offset > bad

    # later updates still flow: intake did not stop
    later = api.push_update(report_from(12, GROUP, "报事 南关村有人乱倒建筑垃圾"))
    await next_sent(svc, GROUP, "已受理，工单号", timeout=QUICK)
    await svc.within(api.wait_confirmed(later, QUICK))
    assert served(api, bad) == 1
    assert svc.scalar("SELECT count(*) FROM tickets") == 2
    assert [m for m in api.sent(GROUP) if SORRY in str(m.get("text"))] == []

    health = await healthz(svc)
    assert health["ok"] is True
    assert health["channels"]["telegram"]["skipped_updates"] == 1
    log = svc.current.log()
    assert log.count(f"update {bad} (message) cannot be parsed by aiogram") == 1
    assert "Traceback" not in log and "getUpdates failed" not in log


def has_all(call: Any, *update_ids: int) -> bool:
    got = {u["update_id"] for u in call.result or []}
    return call.ok and set(update_ids) <= got
