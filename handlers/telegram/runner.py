"""Runs the Telegram bot: long polling by default, webhook when a URL is configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram import __version__ as aiogram_version
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.app import App, build_app
from bot.delivery.media import MediaStore
from bot.health import ChannelHealth
from bot.notify.compose import FollowLink
from config.settings import Settings
from handlers.http import make_web_app, start_site
from handlers.telegram.polling import Poller, stale_after
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


class WebhookHandler(SimpleRequestHandler):
    """aiogram's webhook handler; a body that is not an update gets 400 and one log line.

    aiogram parses the body inside its handler, so a malformed one (or an update of a shape
    the installed aiogram cannot read) surfaced as a 500 with a traceback.
    """

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, secret_token: str,
                 health: ChannelHealth | None = None, **data: Any) -> None:
        super().__init__(dispatcher, bot, handle_in_background=False, secret_token=secret_token,
                         **data)
        self.health = health

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        try:
            # pydantic's ValidationError and json's JSONDecodeError are both ValueErrors
            update = Update.model_validate(await request.json(loads=bot.session.json_loads),
                                           context={"bot": bot})
        except ValueError as e:
            log.warning("webhook body is not an update aiogram %s can read (%s); answered 400",
                        aiogram_version, type(e).__name__)
            return web.Response(status=400, text="Bad Request")
        result: TelegramMethod[Any] | None = await self.dispatcher.feed_webhook_update(
            bot, update, **self.data)
        if self.health is not None:
            self.health.ok()
        return web.Response(body=self._build_response_writer(bot=bot, result=result))


def follow_link_for(username: str | None) -> FollowLink:
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
    app = await build_app(settings, {Channel.TELEGRAM.value: TelegramSender(
        bot, MediaStore(settings.media_root(), settings.media_max_bytes))},
                          follow_link=follow_link_for(settings.telegram_bot_username
                                                      or me.username))
    dp = make_dispatcher(app)
    web_app = make_web_app(app)
    webhook = settings.telegram_webhook_url
    timeout = settings.telegram_polling_timeout
    # registered before /healthz answers, so it never reports a process without its channel
    health = (app.health.channel("telegram", "webhook") if webhook else app.health.channel(
        "telegram", "polling", success="poll", stale_after=stale_after(timeout)))
    secret = ""
    if webhook:
        if settings.telegram_webhook_secret is None:
            raise SystemExit("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
        secret = settings.telegram_webhook_secret.get_secret_value()
        WebhookHandler(dp, bot, secret_token=secret, health=health).register(
            web_app, path=urlsplit(webhook).path or "/")
    runner = await start_site(web_app, settings.http_host, settings.http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop.set)
    app.start_background()
    try:
        if webhook:
            await bot.set_webhook(webhook, secret_token=secret,
                                  allowed_updates=dp.resolve_used_update_types())
            log.info("webhook mode on %s:%s", settings.http_host, settings.http_port)
            await app.stop.wait()
        else:
            log.info("polling mode; /healthz on %s:%s", settings.http_host, settings.http_port)
            await Poller(bot, dp, timeout, health).run(app.stop)
    finally:
        await runner.cleanup()
        await app.close()
        await bot.session.close()


def run(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
