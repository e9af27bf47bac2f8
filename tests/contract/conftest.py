"""Each story in this folder runs once per channel: Telegram, the console, the minimal channel,
the WeChat Official Account, the WeCom app (cards) and the signed bridge."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import build_app
from config.settings import Settings
from handlers.console import CH as CONSOLE
from handlers.console import ConsoleState
from handlers.telegram.runner import follow_link_for, make_dispatcher
from handlers.telegram.sender import TelegramSender
from tests.conftest import FakeClock, TgHarness
from tests.contract.bridge import BridgeChannel, bridge_stack
from tests.contract.channels import (
    Channel,
    ConsoleChannel,
    MinimalChannel,
    RecordingConsoleSender,
    TelegramChannel,
)
from tests.contract.wechat import WeChatChannel, oa_stack
from tests.contract.wecom import WeComChannel, wecom_stack
from tests.fakes import BOT_USERNAME, RecordingBot
from tests.fakes.minimal import CHANNEL as MINIMAL
from tests.fakes.minimal import MinimalSender
from tests.test_telegram_flow import Flow


@pytest.fixture(params=["telegram", "console", "minimal", "wechat", "wecom", "bridge"])
async def channel(request: pytest.FixtureRequest, loaded_settings: Settings,
                  clock: FakeClock, bot: RecordingBot) -> AsyncIterator[Channel]:
    if request.param == "telegram":
        app = await build_app(loaded_settings, {"telegram": TelegramSender(bot)},
                              follow_link=follow_link_for(BOT_USERNAME), clock=clock)
        try:
            yield TelegramChannel(Flow(TgHarness(app, bot, make_dispatcher(app), clock)))
        finally:
            await app.close()
            await bot.session.close()
        return
    if request.param == "console":
        state = ConsoleState()
        sender = RecordingConsoleSender(state)
        app = await build_app(loaded_settings, {CONSOLE: sender}, clock=clock)
        try:
            yield ConsoleChannel(app, state, sender, clock)
        finally:
            await app.close()
        return
    if request.param == "wecom":
        async with wecom_stack(loaded_settings, clock) as wstack:
            yield WeComChannel(wstack)
        return
    if request.param == "bridge":
        async with bridge_stack(loaded_settings, clock) as bstack:
            yield BridgeChannel(bstack)
        return
    if request.param == "wechat":
        async with oa_stack(loaded_settings, clock) as stack:
            yield WeChatChannel(stack)
        return
    minimal = MinimalSender()
    app = await build_app(loaded_settings, {MINIMAL: minimal}, clock=clock)
    try:
        yield MinimalChannel(app, minimal, clock)
    finally:
        await app.close()
