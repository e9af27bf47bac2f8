"""Delivers outbox messages through the Bot API; maps its errors to retry / dead letter."""

from __future__ import annotations

from html import escape

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyParameters,
)

from bot.messages import Outbound, PermanentSendError, RetryLater, TransientSendError
from handlers.telegram.callbacks import pack
from models.enums import Channel, ChatKind

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | None


def markup(msg: Outbound) -> Markup:
    inline = [
        [InlineKeyboardButton(text=b.text, callback_data=pack(b.action)) if b.action
         else InlineKeyboardButton(text=b.text, url=b.url)
         for b in row if b.action or b.url]
        for row in msg.buttons
    ]
    inline = [row for row in inline if row]
    if inline:
        return InlineKeyboardMarkup(inline_keyboard=inline)
    wants_location = any(b.request_location for r in msg.buttons for b in r)
    if msg.chat_kind == ChatKind.PRIVATE and wants_location:
        # location requests only work as a reply keyboard, and only in private chats
        return ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text=b.text, request_location=True)
                       for r in msg.buttons for b in r if b.request_location]],
            resize_keyboard=True, one_time_keyboard=True)
    return None


def html_text(msg: Outbound) -> str:
    body = escape(msg.text)
    if msg.mention_user_id and msg.mention_user_id.isdigit():
        who = escape(msg.mention_name or "")
        body = f'<a href="tg://user?id={msg.mention_user_id}">{who or "@"}</a> {body}'
    return body


class TelegramSender:
    channel = Channel.TELEGRAM.value

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, msg: Outbound) -> str | None:
        try:
            return await self._send(msg)
        except TelegramRetryAfter as e:
            raise RetryLater(float(e.retry_after)) from e
        except (TimeoutError, TelegramServerError, TelegramNetworkError) as e:
            raise TransientSendError(f"{type(e).__name__}: {e}") from e
        except (TelegramForbiddenError, TelegramNotFound, TelegramUnauthorizedError) as e:
            raise PermanentSendError(f"{type(e).__name__}: {e}") from e
        except TelegramBadRequest as e:
            raise PermanentSendError(f"{type(e).__name__}: {e}") from e

    async def _send(self, msg: Outbound) -> str | None:
        text = html_text(msg)
        reply = (ReplyParameters(message_id=int(msg.reply_to), allow_sending_without_reply=True)
                 if msg.reply_to and msg.reply_to.isdigit() else None)
        kb = markup(msg)
        if len(msg.photos) > 1:
            await self.bot.send_media_group(
                msg.chat_id, [InputMediaPhoto(media=p) for p in msg.photos[:10]],
                reply_parameters=reply)
        elif msg.photos:
            if len(text) <= CAPTION_LIMIT:
                sent = await self.bot.send_photo(msg.chat_id, msg.photos[0], caption=text,
                                                 parse_mode="HTML", reply_parameters=reply,
                                                 reply_markup=kb)
                return str(sent.message_id)
            await self.bot.send_photo(msg.chat_id, msg.photos[0], reply_parameters=reply)
        sent = await self.bot.send_message(msg.chat_id, _cut(text), parse_mode="HTML",
                                           reply_parameters=reply, reply_markup=kb,
                                           link_preview_options=None)
        return str(sent.message_id)


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"
