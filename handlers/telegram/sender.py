"""Delivers outbox messages through the Bot API; maps its errors to retry / dead letter.

Telegram measures text in UTF-16 code units of the rendered text (markup excluded), so an
emoji counts twice and `&amp;` once. A caption over the limit goes as the photo alone and
then the text; a text over the limit goes as several messages cut at line ends.
"""

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

from bot.delivery.capabilities import Capabilities
from bot.delivery.media import MediaStore
from bot.messages import Outbound, PermanentSendError, RetryLater, TransientSendError
from handlers.telegram.callbacks import pack
from handlers.telegram.media import photo_input
from models.enums import Channel, ChatKind

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024  # both in UTF-16 code units

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


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def mention_html(msg: Outbound) -> tuple[str, int]:
    """The HTML that mentions the addressee, and how many units it adds to the text."""
    if not (msg.mention_user_id and msg.mention_user_id.isdigit()):
        return "", 0
    who = msg.mention_name or "@"
    return f'<a href="tg://user?id={msg.mention_user_id}">{escape(who)}</a> ', utf16_len(who) + 1


def html_text(msg: Outbound) -> str:
    return mention_html(msg)[0] + escape(msg.text)


def rendered_len(msg: Outbound) -> int:
    return mention_html(msg)[1] + utf16_len(msg.text)


def split_text(text: str, limit: int, first_limit: int | None = None) -> list[str]:
    """Pieces of at most `limit` units (`first_limit` for the first), cut at line ends.

    A single line longer than a piece is cut between code points.
    """
    pieces: list[str] = []
    lines: list[str] = []
    size = 0

    def room() -> int:
        return first_limit if first_limit is not None and not pieces else limit

    def flush() -> None:
        nonlocal lines, size
        piece = "\n".join(lines)
        if piece.strip():
            pieces.append(piece)
        lines, size = [], 0

    for line in text.split("\n"):
        n = utf16_len(line)
        if lines and size + 1 + n > room():
            flush()
        while n > room():
            head = _head(line, room())
            pieces.append(head)
            line = line[len(head):]
            n = utf16_len(line)
        size += n + (1 if lines else 0)
        lines.append(line)
    flush()
    return pieces or [text]


def _head(line: str, limit: int) -> str:
    """The longest start of `line` within `limit` units (a surrogate pair is never split)."""
    units = 0
    for i, ch in enumerate(line):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return line[:i]
    return line


class TelegramSender:
    channel = Channel.TELEGRAM.value
    capabilities = Capabilities(max_text=TEXT_LIMIT, utf16=True, location_button=True)

    def __init__(self, bot: Bot, media: MediaStore | None = None) -> None:
        self.bot = bot
        self.media = media  # uploads photos that came in on another channel

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
        reply = (ReplyParameters(message_id=int(msg.reply_to), allow_sending_without_reply=True)
                 if msg.reply_to and msg.reply_to.isdigit() else None)
        kb = markup(msg)
        photos = [p for ref in msg.photos if (p := photo_input(ref, self.media)) is not None]
        if len(photos) > 1:
            await self.bot.send_media_group(
                msg.chat_id, [InputMediaPhoto(media=p) for p in photos[:10]],
                reply_parameters=reply)
        elif photos:
            if rendered_len(msg) <= CAPTION_LIMIT:
                sent = await self.bot.send_photo(msg.chat_id, photos[0],
                                                 caption=html_text(msg), parse_mode="HTML",
                                                 reply_parameters=reply, reply_markup=kb)
                return str(sent.message_id)
            await self.bot.send_photo(msg.chat_id, photos[0], reply_parameters=reply)
        mention, mention_len = mention_html(msg)
        pieces = split_text(msg.text, TEXT_LIMIT, TEXT_LIMIT - mention_len)
        for i, piece in enumerate(pieces):
            first, last = i == 0, i == len(pieces) - 1
            # the reply and the mention open the text; the buttons close it, and the last
            # message's id is what a worker's reply to the card is matched by
            sent = await self.bot.send_message(
                msg.chat_id, (mention if first else "") + escape(piece), parse_mode="HTML",
                reply_parameters=reply if first else None, reply_markup=kb if last else None,
                link_preview_options=None)
        return str(sent.message_id)
