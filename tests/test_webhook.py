"""The real service in webhook mode: Telegram is told "received" only after the commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.botapi import FakeBotAPI
from tests.fakes.recording import message_update_json
from tests.procs import Service, WriteLock
from tests.test_poller_faults import old_poll

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

GROUP = -1001000888
RESIDENT = 7101
SECRET = "s3cret"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
WAIT = 10.0


@pytest.fixture
async def svc(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Service]:
    service = Service(tmp_path, api, TELEGRAM_WEBHOOK_SECRET=SECRET)
    service.env["TELEGRAM_WEBHOOK_URL"] = f"{service.base_url}/tg/webhook"
    yield service
    await service.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        yield session


def report(update_id: int, message_id: int, text: str = "报事 南关路的路灯不亮了"
           ) -> dict[str, Any]:
    return message_update_json(update_id, GROUP, "supergroup", RESIDENT, "王大妈", text,
                               message_id=message_id)


async def post(http: aiohttp.ClientSession, svc: Service, update: dict[str, Any],
               secret: str | None = SECRET) -> int:
    headers = {HEADER: secret} if secret is not None else {}
    async with http.post(f"{svc.base_url}/tg/webhook", json=update, headers=headers) as r:
        await r.read()
        return r.status


def tickets(svc: Service) -> int:
    return int(svc.scalar("SELECT count(*) FROM tickets"))


async def test_webhook_registered_with_secret_and_strangers_refused(
        svc: Service, api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    await svc.start()
    hook = svc.env["TELEGRAM_WEBHOOK_URL"]
    call = await svc.within(api.wait_for_call("setWebhook", timeout=WAIT))
    assert call.params["url"] == hook
    assert call.params["secret_token"] == SECRET
    assert {"message", "callback_query"} <= set(call.params["allowed_updates"])
    assert api.webhook_url == hook

    async with http.get(f"{svc.base_url}/healthz") as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert (await r.json())["ok"] is True

    # a wrong or missing secret: refused, and nothing is recorded
    assert await post(http, svc, report(1, 10), secret="guess") == 401
    assert await post(http, svc, report(1, 10), secret=None) == 401
    assert tickets(svc) == 0
    assert svc.scalar("SELECT count(*) FROM inbound_log") == 0

    assert api.calls_of("getUpdates") == []  # webhook mode never polls
    assert await svc.current.stop() == 0
    assert "Traceback" not in svc.current.log()


async def test_webhook_answers_after_the_commit_and_once(
        svc: Service, api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    await svc.start()

    # the right secret: 200, and by then the ticket is committed
    assert await post(http, svc, report(2, 11)) == 200
    number = svc.scalar("SELECT number FROM tickets WHERE source_message_id = '11'")
    assert number is not None and tickets(svc) == 1
    reply = await svc.within(api.wait_for_sent(
        lambda m: m["chat_id"] == GROUP and f"工单号 {number}" in m.get("text", ""), WAIT))
    assert reply["reply_parameters"]["message_id"] == 11

    # Telegram retries a delivery it thinks failed, sometimes under a new update id
    assert await post(http, svc, report(2, 11)) == 200
    assert await post(http, svc, report(3, 11)) == 200
    assert tickets(svc) == 1

    # the answer waits for the commit: hold the write lock and the POST hangs
    lock = WriteLock(svc.db)
    await lock.acquire()
    try:
        pending = asyncio.create_task(post(http, svc, report(4, 12, "报事 南关村水管爆了")))
        await asyncio.sleep(0.7)
        assert not pending.done(), "answered before the ticket could be committed"
        assert tickets(svc) == 1
    finally:
        lock.release()
    assert await asyncio.wait_for(pending, WAIT) == 200
    assert tickets(svc) == 2

    # barrier: once /help is answered, every earlier row to the group has gone out
    mark = len(api.sent())
    help_ = message_update_json(5, GROUP, "supergroup", RESIDENT, "王大妈", "/help",
                                message_id=13)
    assert await post(http, svc, help_) == 200
    await svc.within(api.wait_for_sent(
        lambda m: m["chat_id"] == GROUP and "/my" in m.get("text", ""), WAIT, start=mark))
    replies = [t for t in api.sent_texts(GROUP) if "已受理，工单号" in t]
    assert len(replies) == 2 and sum(number in t for t in replies) == 1


async def test_a_body_that_is_not_an_update_gets_400_without_a_traceback(
        svc: Service, api: FakeBotAPI, http: aiohttp.ClientSession) -> None:
    await svc.start()
    await svc.within(api.wait_for_call("setWebhook", timeout=WAIT))
    bodies = [
        b"{not json",
        b"\xff\xfe\x00",  # not UTF-8
        b"[1, 2]",
        json.dumps({"message": {"text": "no update_id"}}).encode(),
        json.dumps(old_poll(6, GROUP)).encode(),  # shaped by an older Bot API
    ]
    for body in bodies:
        async with http.post(f"{svc.base_url}/tg/webhook", data=body, headers={
                HEADER: SECRET, "Content-Type": "application/json"}) as r:
            assert r.status == 400, body
    # the wrong secret is still refused before the body is looked at
    async with http.post(f"{svc.base_url}/tg/webhook", data=b"{not json",
                         headers={HEADER: "guess"}) as r:
        assert r.status == 401
    assert svc.scalar("SELECT count(*) FROM inbound_log") == 0

    # and the next real update goes through
    assert await post(http, svc, report(7, 14)) == 200
    assert tickets(svc) == 1
    async with http.get(f"{svc.base_url}/healthz") as r:
        assert r.status == 200
        telegram = (await r.json())["channels"]["telegram"]
    assert telegram["mode"] == "webhook" and telegram["ok"] is True
    assert 0 <= telegram["seconds_since_update"] < 5

    assert await svc.current.stop() == 0
    log = svc.current.log()
    assert log.count("webhook body is not an update aiogram") == len(bodies)
    assert "Traceback" not in log
