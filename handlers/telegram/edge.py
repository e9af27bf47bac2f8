"""Telegram as an edge of `serve`: long polling by default, webhook when a URL is configured."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiogram import Dispatcher
from aiohttp import web

from bot.app import App
from bot.delivery.media import MediaStore
from bot.health import ChannelHealth
from config.settings import Settings
from handlers.telegram.polling import Poller, stale_after
from handlers.telegram.runner import WebhookHandler, make_bot, make_dispatcher
from handlers.telegram.sender import TelegramSender
from models.enums import Channel

log = logging.getLogger(__name__)


class TelegramEdge:
    name = Channel.TELEGRAM.value

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bot = make_bot(settings)
        self.sender = TelegramSender(
            self.bot, MediaStore(settings.media_root(), settings.media_max_bytes))
        self.username = settings.telegram_bot_username
        self.health: ChannelHealth | None = None
        self.dp: Dispatcher | None = None

    async def prepare(self) -> None:
        me = await self.bot.me()
        self.username = self.username or me.username
        log.info("bot @%s (id %s); privacy mode %s", me.username, me.id,
                 "off" if me.can_read_all_group_messages
                 else "ON: bot sees only commands/mentions")

    def follow_link(self, number: str) -> str | None:
        return f"https://t.me/{self.username}?start=t_{number}" if self.username else None

    def mount(self, web_app: web.Application, app: App) -> None:
        s = self.settings
        self.dp = dp = make_dispatcher(app)
        if s.telegram_webhook_url:
            self.health = app.health.channel(self.name, "webhook")
            secret = s.telegram_webhook_secret
            if secret is None:
                raise SystemExit("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
            WebhookHandler(dp, self.bot, secret_token=secret.get_secret_value(),
                           health=self.health).register(
                web_app, path=urlsplit(s.telegram_webhook_url).path or "/")
        else:
            self.health = app.health.channel(
                self.name, "polling", success="poll",
                stale_after=stale_after(s.telegram_polling_timeout))

    async def run(self, app: App) -> None:
        s, dp = self.settings, self.dp
        assert dp is not None and self.health is not None, "mount() comes first"
        if s.telegram_webhook_url and s.telegram_webhook_secret is not None:
            await self.bot.set_webhook(s.telegram_webhook_url,
                                       secret_token=s.telegram_webhook_secret.get_secret_value(),
                                       allowed_updates=dp.resolve_used_update_types())
            log.info("telegram: webhook mode")
            await app.stop.wait()
        else:
            log.info("telegram: polling mode")
            await Poller(self.bot, dp, s.telegram_polling_timeout, self.health).run(app.stop)

    async def close(self) -> None:
        await self.bot.session.close()
