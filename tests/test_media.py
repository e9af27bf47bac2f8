"""The media store, and a photo crossing channels: fetched once, uploaded where ids can't go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.methods import SendPhoto
from aiogram.types import BufferedInputFile
from sqlalchemy import select

from bot.app import App, build_app
from bot.delivery.media import MediaRefused, MediaStore, parse_ref, photo_ref
from bot.messages import Media
from config.settings import Settings
from handlers.telegram.runner import follow_link_for, make_dispatcher
from handlers.telegram.sender import TelegramSender
from models.tickets import Attachment
from tests.conftest import FakeClock, TgHarness
from tests.fakes import BOT_USERNAME, RecordingBot
from tests.fakes.minimal import CHANNEL, MinimalChat, MinimalSender
from tests.test_telegram_flow import WORKER, Flow, onboard, report
from tests.test_telegram_flow import flow as flow  # fixtures

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4


def test_the_store_keeps_each_content_once_and_checks_it(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", max_bytes=10_000)
    first = store.put(JPEG)
    again = store.put(JPEG)
    assert first == again and first.mime == "image/jpeg" and first.size == len(JPEG)
    assert store.get(first.sha256) == JPEG
    assert [p.name for p in (tmp_path / "media").rglob("*") if p.is_file()] == [first.sha256]
    with pytest.raises(MediaRefused, match="limit"):
        store.put(JPEG * 20)
    with pytest.raises(MediaRefused, match="not a photo"):
        store.put("不是图片".encode())
    with pytest.raises(MediaRefused):
        store.put(b"")
    with pytest.raises(MediaRefused):
        store.get("../../etc/passwd")
    assert not store.has("../x")


def test_a_photo_reference_round_trips() -> None:
    assert parse_ref(photo_ref("wechat", "MEDIA1", "ab" * 32)) == ("wechat", "MEDIA1", "ab" * 32)
    assert parse_ref("AgADold-telegram-id") == (None, "AgADold-telegram-id", None)


async def test_a_telegram_photo_is_fetched_into_the_store(flow: Flow) -> None:
    await onboard(flow, WORKER)
    flow.bot.session.files["AgADpothole"] = JPEG
    tk = await report(flow, "报事 南关村口路面塌了个坑", photo_file_id="AgADpothole")
    async with flow.tg.app.deps.sm() as s:
        att = await s.scalar(select(Attachment).where(Attachment.ticket_id == tk.id))
    assert att is not None and att.file_id == "AgADpothole" and att.media_sha
    store = flow.tg.app.deps.media
    assert store is not None and store.get(att.media_sha) == JPEG


@pytest.fixture
async def two_channels(loaded_settings: Settings, bot: RecordingBot, clock: FakeClock
                       ) -> AsyncIterator[tuple[App, Flow, MinimalSender]]:
    store = MediaStore(loaded_settings.media_root())
    minimal = MinimalSender()
    app = await build_app(loaded_settings, {"telegram": TelegramSender(bot, store),
                                            CHANNEL: minimal},
                          follow_link=follow_link_for(BOT_USERNAME), clock=clock)
    try:
        yield app, Flow(TgHarness(app, bot, make_dispatcher(app), clock)), minimal
    finally:
        await app.close()
        await bot.session.close()


async def test_a_residents_photo_from_another_channel_reaches_a_telegram_worker(
        two_channels: tuple[App, Flow, MinimalSender]) -> None:
    app, flow, _minimal = two_channels
    await onboard(flow, WORKER)
    assert app.deps.media is not None
    sha = app.deps.media.put(JPEG).sha256  # what the other channel fetched when it arrived
    chat = MinimalChat()
    ib = chat.private("r900", "南关农贸市场门口垃圾堆成山了", name="王阿姨")
    ib.media = [Media("photo", "MINIMAL-MEDIA-1", sha)]
    await app.core.on_message(ib)
    await flow.deliver()
    photos = [r for r in flow.bot.requests if isinstance(r, SendPhoto)
              and str(r.chat_id) == str(WORKER)]
    assert len(photos) == 1
    sent = photos[0].photo
    assert isinstance(sent, BufferedInputFile) and sent.data == JPEG
    assert "【新工单】" in (photos[0].caption or "")


async def test_a_foreign_photo_that_was_never_fetched_is_left_out_not_fatal(
        two_channels: tuple[App, Flow, MinimalSender]) -> None:
    app, flow, _minimal = two_channels
    await onboard(flow, WORKER)
    ib = MinimalChat().private("r901", "南关农贸市场门口垃圾堆成山了")
    ib.media = [Media("photo", "MINIMAL-MEDIA-2", None)]  # it could not be fetched
    await app.core.on_message(ib)
    await flow.deliver()
    assert not [r for r in flow.bot.requests if isinstance(r, SendPhoto)]
    assert any("【新工单】" in x for x in flow.texts(WORKER))
