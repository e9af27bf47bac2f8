"""When the platform refuses free text (WeChat's 45015 window or 45047 quota), a channel with
templates still reaches the resident with one; without templates the coordinator is told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.app import App, build_app
from bot.messages import Outbound, Undeliverable
from config.settings import Settings
from tests.conftest import FakeClock
from tests.contract.channels import MinimalChannel
from tests.fakes.minimal import CHANNEL, MinimalSender


@dataclass
class QuotaSender(MinimalSender):
    """Free text to the resident is refused, as WeChat does past its per-message quota."""

    refuse: str = "resident"

    async def send(self, msg: Outbound) -> str | None:
        if msg.chat_id == self.refuse:
            raise Undeliverable("errcode 45047: out of customer-service quota")
        return await super().send(msg)


@pytest.fixture
async def channel(loaded_settings: Settings, clock: FakeClock
                  ) -> AsyncIterator[tuple[App, QuotaSender, MinimalChannel]]:
    sender = QuotaSender()
    app = await build_app(loaded_settings, {CHANNEL: sender}, clock=clock)
    try:
        yield app, sender, MinimalChannel(app, sender, clock)
    finally:
        await app.close()


async def test_a_refused_update_goes_as_a_template(
        channel: tuple[App, QuotaSender, MinimalChannel]) -> None:
    app, sender, ch = channel
    await ch.join("worker")
    ib = ch.chat.private("resident", "南关农贸市场门口垃圾堆了三天没人清运", name="张大妈")
    ib.received_at = ch.clock()
    await app.core.on_message(ib)
    await ch.deliver()
    number = sender.templates[-1].number  # the receipt itself was refused: a template went
    await ch.say("worker", f"接单 {number}")
    await ch.deliver()
    notices = [n for n in sender.templates if n.chat_id == "resident"]
    assert [n.state for n in notices] == ["已派单", "已接单"]
    # the number has a field of its own: the short line says what happened
    assert notices[-1].number == number and notices[-1].line.startswith("已由网格员")
    assert sender.texts("resident") == []
