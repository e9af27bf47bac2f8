"""The Telegram bot, its Dispatcher and its webhook handler (run by handlers/telegram/edge.py)."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram import __version__ as aiogram_version
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.app import App
from bot.health import ChannelHealth
from bot.notify.compose import FollowLink
from config.settings import Settings
from handlers.telegram.routers import build_routers
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
