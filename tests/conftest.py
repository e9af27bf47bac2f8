"""Shared fixtures: a fresh SQLite file per test, settings, a fake clock, a Telegram harness."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram import Dispatcher
from aiogram.types import Update
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.app import App, build_app, prepare_database
from bot.county.files import CountyData, load_county_dir
from bot.routing import Router
from config.settings import SAMPLE_DIR, Settings
from handlers.telegram.runner import follow_link_for, make_dispatcher
from handlers.telegram.sender import TelegramSender
from models.tickets import Outbox
from tests.fakes import BOT_USERNAME, RecordingBot
from tests.fakes.botapi import FakeBotAPI
from tests.procs import TOKEN

SHANGHAI = ZoneInfo("Asia/Shanghai")


def db_url_for(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


class FakeClock:
    """Tuesday 2026-03-03 10:00 in Shanghai (a workday, inside working hours) until advanced."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **kw: float) -> None:
        self.now += timedelta(seconds=seconds, **kw)


@pytest.fixture(scope="session")
def sample_county_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated and loaded with the sample county once per session, to be copied per test."""
    path = tmp_path_factory.mktemp("template") / "county.db"
    asyncio.run(prepare_database(Settings(database_url=db_url_for(path), _env_file=None)))
    return path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite file; build_app migrates it and loads the sample county."""
    return db_url_for(tmp_path / "grid.db")


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, _env_file=None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bot() -> RecordingBot:
    return RecordingBot()


@dataclass
class TgHarness:
    """The real app and dispatcher over a recording bot; `deliver` drains the outbox."""

    app: App
    bot: RecordingBot
    dp: Dispatcher
    clock: FakeClock

    async def feed(self, update: Update) -> Any:
        return await self.dp.feed_update(self.bot, update)

    async def deliver(self, max_rounds: int = 100) -> int:
        """Send everything queued, moving the clock on whenever the rate limits hold rows back."""
        total = 0
        for _ in range(max_rounds):
            sent = await self.app.outbox.run_once()
            total += sent
            self.clock.advance(1.1)  # one message a second to a private chat
            if sent:
                continue
            async with self.app.deps.sm() as s:
                due = await s.scalar(select(func.min(Outbox.next_attempt_at)).where(
                    Outbox.status.in_(["pending", "sending"])))
            if due is None:
                return total
            self.clock.now = max(self.clock.now, due)
        raise AssertionError("the outbox did not drain")


@pytest.fixture
def loaded_settings(settings: Settings, sample_county_db: Path) -> Settings:
    """`settings` whose database already holds the sample county (what build_app would load)."""
    target = make_url(settings.database_url).database
    if target and not Path(target).exists():
        shutil.copyfile(sample_county_db, target)
    return settings


@pytest.fixture
async def tg(loaded_settings: Settings, bot: RecordingBot,
             clock: FakeClock) -> AsyncIterator[TgHarness]:
    app = await build_app(loaded_settings, {"telegram": TelegramSender(bot)},
                          follow_link=follow_link_for(BOT_USERNAME), clock=clock)
    try:
        yield TgHarness(app, bot, make_dispatcher(app), clock)
    finally:
        await app.close()
        await bot.session.close()


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    """A fake Telegram Bot API server on 127.0.0.1 (the service runs against its base URL)."""
    async with FakeBotAPI(token=TOKEN, max_poll_wait=1.0) as server:
        yield server


@pytest.fixture(scope="session")
def county() -> CountyData:
    """The sample county (config/sample), parsed once."""
    return load_county_dir(SAMPLE_DIR)


@pytest.fixture(scope="session")
def router(county: CountyData) -> Router:
    return Router.build(county)
