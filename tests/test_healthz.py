"""/healthz on the real app: each channel's health, the outbox's oldest pending row, and 503s.

The app, its database and dispatcher are real (the `tg` harness); the channel registry runs
on a clock the test moves, and the HTTP side is aiohttp's test server on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.health import Health
from handlers.http import make_web_app
from handlers.telegram.polling import stale_after
from models.db import make_engine, make_sessionmaker
from models.tickets import Outbox
from tests.conftest import TgHarness
from tests.fakes import make_message_update

GROUP = -1001000555


class Mono:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mono(tg: TgHarness) -> Mono:
    clock = Mono()
    tg.app.health = Health(clock)
    return clock


@pytest.fixture
async def http(tg: TgHarness, mono: Mono) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_web_app(tg.app))) as client:
        yield client


async def get(http: TestClient[Any, Any], status: int) -> dict[str, Any]:
    r = await http.get("/healthz")
    assert r.status == status and r.content_type == "application/json"
    return dict(await r.json())


async def pending_rows(tg: TgHarness) -> int:
    async with tg.app.deps.sm() as s:
        return int(await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status == "pending")) or 0)


async def test_polling_channel_and_outbox_age(tg: TgHarness, mono: Mono,
                                              http: TestClient[Any, Any]) -> None:
    ch = tg.app.health.channel("telegram", "polling", success="poll",
                               stale_after=stale_after(1))
    assert await get(http, 200) == {
        "ok": True, "outbox_pending": 0, "outbox_dead": 0, "outbox_oldest_pending_seconds": None,
        "channels": {"telegram": {"mode": "polling", "ok": True, "seconds_since_poll": None,
                                  "seconds_since_start": 0.0, "skipped_updates": 0,
                                  "stale_after_seconds": 33}}}

    ch.ok()
    mono.now += 10
    await tg.feed(make_message_update(1, GROUP, "supergroup", 7301, "王大妈",
                                      "报事 南关村口的路灯坏了，晚上很黑", bot=tg.bot))
    queued = await pending_rows(tg)
    assert queued >= 1
    tg.clock.advance(90)  # the rows were written at the app's clock; now they are 90 s old
    body = await get(http, 200)
    assert body["outbox_pending"] == queued and body["outbox_oldest_pending_seconds"] == 90.0
    assert body["channels"]["telegram"]["seconds_since_poll"] == 10.0

    await tg.deliver()
    body = await get(http, 200)
    assert body["outbox_pending"] == 0 and body["outbox_oldest_pending_seconds"] is None

    # 40 s without a successful poll is more than 3 × 1 s + 30 s: intake is stuck
    ch.failed("getUpdates: TelegramNetworkError")
    mono.now += 30
    body = await get(http, 503)
    assert body["ok"] is False
    assert body["problems"] == ["telegram: no successful poll for 40 seconds"]
    telegram = body["channels"]["telegram"]
    assert telegram["ok"] is False and telegram["seconds_since_poll"] == 40.0
    assert telegram["problem"] == "no successful poll for 40 seconds"
    assert telegram["last_error"] == "getUpdates: TelegramNetworkError"
    assert body["outbox_pending"] == 0  # the rest of the report is still there

    ch.ok()
    body = await get(http, 200)
    assert body["ok"] is True and "problems" not in body
    assert "last_error" not in body["channels"]["telegram"]


async def test_a_poller_that_never_polled_is_stuck_too(tg: TgHarness, mono: Mono,
                                                       http: TestClient[Any, Any]) -> None:
    tg.app.health.channel("telegram", "polling", success="poll", stale_after=stale_after(25))
    mono.now += 105
    assert (await get(http, 200))["ok"] is True  # 105 s is the limit for a 25 s timeout
    mono.now += 1
    body = await get(http, 503)
    assert body["problems"] == ["telegram: no successful poll for 106 seconds"]
    assert body["channels"]["telegram"]["seconds_since_poll"] is None
    assert body["channels"]["telegram"]["seconds_since_start"] == 106.0


async def test_a_webhook_channel_is_never_stale(tg: TgHarness, mono: Mono,
                                                http: TestClient[Any, Any]) -> None:
    ch = tg.app.health.channel("telegram", "webhook")
    ch.ok()
    mono.now += 86400  # a quiet day: Telegram only calls when someone writes
    body = await get(http, 200)
    assert body["channels"]["telegram"] == {"mode": "webhook", "ok": True,
                                            "seconds_since_update": 86400.0,
                                            "skipped_updates": 0}


async def test_503_when_the_database_is_unreachable(tg: TgHarness, mono: Mono,
                                                    http: TestClient[Any, Any],
                                                    tmp_path: Path) -> None:
    tg.app.health.channel("telegram", "polling", success="poll", stale_after=stale_after(1))
    gone = make_engine(f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/grid.db")
    working = tg.app.deps.sm
    tg.app.deps.sm = make_sessionmaker(gone)
    try:
        body = await get(http, 503)
    finally:
        tg.app.deps.sm = working
        await gone.dispose()
    assert body["ok"] is False and body["db"] == "unreachable"
    assert body["problems"] == ["database unreachable"]
    assert body["channels"]["telegram"]["ok"] is True
    assert (await get(http, 200))["ok"] is True
