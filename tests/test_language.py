"""LANGUAGE sets what residents and staff read, unless a person's identity says otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from bot.app import build_app
from bot.notify.texts import use_language
from config.settings import Settings
from handlers.telegram.runner import follow_link_for, make_dispatcher
from handlers.telegram.sender import TelegramSender
from models.enums import StaffRole
from models.people import Identity
from tests.conftest import FakeClock, TgHarness
from tests.fakes import BOT_USERNAME, RecordingBot
from tests.test_telegram_flow import GROUP, RESIDENT, WORKER, Flow, invite, onboard, report
from tests.test_telegram_flow import flow as flow  # fixtures


@pytest.fixture
async def english(loaded_settings: Settings, bot: RecordingBot,
                  clock: FakeClock) -> AsyncIterator[Flow]:
    settings = loaded_settings.model_copy(update={"language": "en"})
    app = await build_app(settings, {"telegram": TelegramSender(bot)},
                          follow_link=follow_link_for(BOT_USERNAME), clock=clock)
    try:
        yield Flow(TgHarness(app, bot, make_dispatcher(app), clock))
    finally:
        await app.close()
        await bot.session.close()
        use_language("zh")  # the process default for the tests after this one


async def test_language_en_reaches_residents_and_staff(english: Flow) -> None:
    flow = english
    code = await invite(flow.tg, StaffRole.WORKER, grid="FN-02")
    await flow.say(WORKER, f"/start {code}")
    await flow.deliver()
    assert flow.texts(WORKER)[-1].startswith("Done: you are now")
    tk = await report(flow)
    receipt = flow.texts(GROUP)[-1]
    assert f"Received, ticket {tk.number}" in receipt and "已受理" not in receipt
    card = next(x for x in flow.texts(WORKER) if tk.number in x)
    assert "类别" not in card


async def test_a_residents_own_language_wins(flow: Flow) -> None:
    await onboard(flow, WORKER)
    await flow.say(RESIDENT, "/start")  # the resident starts the bot privately
    async with flow.tg.app.deps.sm() as s, s.begin():
        await s.execute(update(Identity).where(Identity.user_id == str(RESIDENT))
                        .values(language="en"))
    tk = await report(flow)
    await flow.press(WORKER, WORKER, "接单", tk.number)
    await flow.deliver()
    assert flow.texts(RESIDENT)[-1] == f"Your ticket {tk.number} was acknowledged by 郑波."
    assert flow.texts(WORKER)[-1].startswith("已接单")
