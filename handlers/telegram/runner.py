"""Runs the Telegram bot: long polling by default, webhook when a URL is configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.webhook.aiohttp_server import SimpleRequestHandler

from bot.app import App, build_app
from config.settings import Settings
from handlers.http import make_web_app, start_site
from handlers.telegram.polling import Poller
from handlers.telegram.routers import build_routers
from handlers.telegram.sender import TelegramSender
from models.enums import Channel

log = logging.getLogger(__name__)


def make_bot(settings: Settings) -> Bot:
    if settings.telegram_bot_token is None:
        raise SystemExit("TELEGRAM_BOT_TOKEN is not set (see .env.example), or use: console")
    base = settings.telegram_api_base
    session = AiohttpSession(api=TelegramAPIServer.from_base(base)) if base else AiohttpSession()
    return Bot(settings.telegram_bot_token.get_secret_value(), session=session,
               default=DefaultBotProperties(link_preview_is_disabled=True))


def make_dispatcher(app: App) -> Dispatcher:
    dp = Dispatcher(core=app.core)
    dp.include_routers(*build_routers())
    return dp


def follow_link_for(username: str | None):  # type: ignore[no-untyped-def]
    def link(channel: str, number: str) -> str | None:
        if channel != Channel.TELEGRAM or not username:
            return None
        return f"https://t.me/{username}?start=t_{number}"
    return link


async def serve(settings: Settings) -> None:
    bot = make_bot(settings)
    me = await bot.me()
    log.info("bot @%s (id %s); privacy mode %s", me.username, me.id,
             "off" if me.can_read_all_group_messages else "ON: bot sees only commands/mentions")
    app = await build_app(settings, {Channel.TELEGRAM.value: TelegramSender(bot)},
                          follow_link=follow_link_for(settings.telegram_bot_username
                                                      or me.username))
    dp = make_dispatcher(app)
    web_app = make_web_app(app)
    webhook = settings.telegram_webhook_url
    if webhook:
        secret = settings.telegram_webhook_secret
        if secret is None:
            raise SystemExit("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
        SimpleRequestHandler(dp, bot, handle_in_background=False,
                             secret_token=secret.get_secret_value()).register(
            web_app, path=urlsplit(webhook).path or "/")
    runner = await start_site(web_app, settings.http_host, settings.http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop.set)
    app.start_background()
    try:
        if webhook:
            await bot.set_webhook(webhook, secret_token=secret.get_secret_value(),
                                  allowed_updates=dp.resolve_used_update_types())
            log.info("webhook mode on %s:%s", settings.http_host, settings.http_port)
            await app.stop.wait()
        else:
            log.info("polling mode; /healthz on %s:%s", settings.http_host, settings.http_port)
            await Poller(bot, dp, settings.telegram_polling_timeout).run(app.stop)
    finally:
        await runner.cleanup()
        await app.close()
        await bot.session.close()


def run(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
