"""aiogram Message -> neutral Inbound."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram.types import Message, User

from bot.messages import GeoPoint, Inbound, Media
from models.enums import Channel, ChatKind

MAX_TEXT = 4000


def display_name(user: User | None) -> str:
    if user is None:
        return ""
    return (user.full_name or user.username or str(user.id))[:128]


TELEGRAM_SERVICE_USER = 777000  # posts a linked channel's messages into its discussion group


def from_service(message: Message) -> bool:
    """A channel post, its automatic forward, or an anonymous admin: not a resident."""
    user = message.from_user
    return (user is None or user.is_bot or user.id == TELEGRAM_SERVICE_USER
            or bool(message.is_automatic_forward) or message.sender_chat is not None)


def chat_kind(message: Message) -> ChatKind:
    return ChatKind.PRIVATE if message.chat.type == "private" else ChatKind.GROUP


def mentions(message: Message, bot_id: int, bot_username: str | None) -> bool:
    text = message.text or message.caption or ""
    for e in message.entities or message.caption_entities or []:
        if (e.type == "mention" and bot_username
                and e.extract_from(text).lstrip("@").lower() == bot_username.lower()):
            return True
        if e.type == "text_mention" and e.user and e.user.id == bot_id:
            return True
        if e.type == "bot_command" and bot_username and e.extract_from(text).lower().endswith(
                f"@{bot_username.lower()}"):
            return True
    return False


def strip_mention(text: str, bot_username: str | None) -> str:
    if bot_username:
        text = text.replace(f"@{bot_username}", " ")
    return text.strip()


def to_inbound(message: Message, update_id: int, bot_id: int, bot_username: str | None
               ) -> Inbound:
    media: list[Media] = []
    if message.photo:
        media.append(Media("photo", message.photo[-1].file_id))
    if message.voice:
        media.append(Media("voice", message.voice.file_id))
    if message.video:
        media.append(Media("video", message.video.file_id))
    if message.document:
        media.append(Media("document", message.document.file_id))
    loc = None
    if message.location:
        loc = GeoPoint(message.location.latitude, message.location.longitude, "wgs84")
    if message.venue:
        loc = GeoPoint(message.venue.location.latitude, message.venue.location.longitude, "wgs84")
    text = message.text or message.caption or ""
    if message.venue:
        text = f"{text} {message.venue.title} {message.venue.address}".strip()
    reply = message.reply_to_message
    sender = message.from_user
    return Inbound(
        channel=Channel.TELEGRAM.value,
        # message ids are unique per chat; the update id alone changes if Telegram re-sends
        external_id=f"{message.chat.id}:{message.message_id}",
        chat_id=str(message.chat.id),
        chat_kind=chat_kind(message),
        sender_id=str(sender.id if sender else message.chat.id),
        sender_name=display_name(sender),
        text=strip_mention(text, bot_username)[:MAX_TEXT],
        location=loc,
        media=media,
        media_group_id=message.media_group_id,
        message_id=str(message.message_id),
        reply_to_message_id=str(reply.message_id) if reply else None,
        reply_to_bot=bool(reply and reply.from_user and reply.from_user.id == bot_id),
        mentions_bot=mentions(message, bot_id, bot_username),
        received_at=datetime.fromtimestamp(message.date.timestamp(), UTC)
        if message.date else datetime.now(UTC),
    )
