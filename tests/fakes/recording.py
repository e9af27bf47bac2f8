"""In-process fake for aiogram: a session that records requests instead of calling Telegram.

Modelled on aiogram's own ``tests/mocked_bot.py`` but answers on its own, so a whole
``Dispatcher.feed_update`` round trip works without queuing a response for every call.
Also holds builders for incoming updates, both as ``aiogram.types.Update`` and as Bot API JSON.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, cast

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageReplyMarkup,
    GetChatMember,
    GetFile,
    GetMe,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    Chat,
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberUnion,
    File,
    InlineKeyboardMarkup,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    Update,
    User,
)

ChatType = Literal["group", "supergroup", "private"]
ChatId = int | str
MethodType = type[TelegramMethod[Any]]

BOT_ID = 42
BOT_USERNAME = "grid_intake_bot"
BOT_FIRST_NAME = "网格报事助手"
BOT_USER_JSON: dict[str, Any] = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": BOT_FIRST_NAME,
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": True,
    "supports_inline_queries": False,
}

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)

_PENDING: Any = object()
_ADMIN_RIGHTS_TRUE = frozenset(
    {
        "can_manage_chat",
        "can_delete_messages",
        "can_restrict_members",
        "can_invite_users",
        "can_pin_messages",
        "can_change_info",
    }
)


def default_bot_user() -> User:
    return User.model_validate(BOT_USER_JSON)


# --------------------------------------------------------------------------- update builders


def utf16_len(text: str) -> int:
    """Telegram entity offsets/lengths are counted in UTF-16 code units, not code points."""
    return len(text.encode("utf-16-le")) // 2


_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{5,32})?")
_MENTION_RE = re.compile(r"(?<![A-Za-z0-9_/@])@[A-Za-z0-9_]{5,32}")


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram itself would attach to a plain-text message (commands, @mentions)."""
    found: list[tuple[int, int, str]] = []
    for regex, kind in ((_COMMAND_RE, "bot_command"), (_MENTION_RE, "mention")):
        for match in regex.finditer(text):
            found.append((match.start(), match.end(), kind))
    found.sort()
    return [
        {
            "type": kind,
            "offset": utf16_len(text[:start]),
            "length": utf16_len(text[start:end]),
        }
        for start, end, kind in found
    ]


def user_json(
    user_id: int, name: str = "User", username: str | None = None, *, is_bot: bool = False
) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": name}
    if username:
        data["username"] = username
    if not is_bot:
        data["language_code"] = "zh-hans"
    return data


def chat_json(
    chat_id: int,
    chat_type: str | None = None,
    *,
    title: str | None = None,
    first_name: str | None = None,
    username: str | None = None,
) -> dict[str, Any]:
    """Short ``Chat`` JSON; without ``chat_type`` the id sign decides, as in Telegram."""
    if chat_type is None:
        chat_type = "private" if chat_id > 0 else "supergroup"
    data: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        data["first_name"] = first_name or f"User {chat_id}"
    else:
        data["title"] = title or f"Group {chat_id}"
    if username:
        data["username"] = username
    return data


def photo_sizes_json(file_id: str) -> list[dict[str, Any]]:
    """Two sizes, largest last with exactly ``file_id`` (what handlers usually store)."""
    unique = file_id[-12:] or "u"
    return [
        {
            "file_id": f"{file_id}-s",
            "file_unique_id": f"{unique}-s",
            "width": 320,
            "height": 240,
            "file_size": 12_000,
        },
        {
            "file_id": file_id,
            "file_unique_id": unique,
            "width": 1280,
            "height": 960,
            "file_size": 180_000,
        },
    ]


def _to_json_dict(value: Mapping[str, Any] | Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    return cast(dict[str, Any], value.model_dump(mode="json", by_alias=True, exclude_none=True))


def message_json(
    *,
    chat_id: int,
    chat_type: ChatType,
    user_id: int,
    user_name: str,
    message_id: int,
    text: str | None = None,
    caption: str | None = None,
    photo_file_id: str | None = None,
    media_group_id: str | None = None,
    location: tuple[float, float] | Mapping[str, Any] | Location | None = None,
    reply_to_message: Mapping[str, Any] | Message | None = None,
    entities: Sequence[Mapping[str, Any] | MessageEntity] | None = None,
    username: str | None = None,
    chat_title: str | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """A user's ``Message`` as Bot API JSON. ``entities=None`` auto-detects commands/mentions."""
    chat = chat_json(
        chat_id,
        chat_type,
        title=chat_title,
        first_name=user_name,
        username=username if chat_type == "private" else None,
    )
    msg: dict[str, Any] = {
        "message_id": message_id,
        "from": user_json(user_id, user_name, username),
        "chat": chat,
        "date": int(time.time()) if date is None else date,
    }
    if media_group_id is not None:
        msg["media_group_id"] = str(media_group_id)
    if reply_to_message is not None:
        msg["reply_to_message"] = _to_json_dict(reply_to_message)
    if photo_file_id is not None:
        msg["photo"] = photo_sizes_json(photo_file_id)
    if location is not None:
        if isinstance(location, tuple):
            msg["location"] = {"latitude": location[0], "longitude": location[1]}
        else:
            msg["location"] = _to_json_dict(location)
    body = text if text is not None else caption
    body_key, entities_key = ("text", "entities") if text is not None else (
        "caption", "caption_entities")
    if body is not None:
        msg[body_key] = body
        found = detect_entities(body) if entities is None else [_to_json_dict(e) for e in entities]
        if found:
            msg[entities_key] = found
    return msg


def message_update_json(
    update_id: int,
    chat_id: int,
    chat_type: ChatType,
    user_id: int,
    user_name: str,
    text: str | None = None,
    caption: str | None = None,
    photo_file_id: str | None = None,
    media_group_id: str | None = None,
    location: tuple[float, float] | Mapping[str, Any] | Location | None = None,
    reply_to_message: Mapping[str, Any] | Message | None = None,
    entities: Sequence[Mapping[str, Any] | MessageEntity] | None = None,
    message_id: int | None = None,
    *,
    username: str | None = None,
    chat_title: str | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """``{"update_id": ..., "message": {...}}``; ``message_id`` defaults to ``update_id``."""
    return {
        "update_id": update_id,
        "message": message_json(
            chat_id=chat_id,
            chat_type=chat_type,
            user_id=user_id,
            user_name=user_name,
            message_id=update_id if message_id is None else message_id,
            text=text,
            caption=caption,
            photo_file_id=photo_file_id,
            media_group_id=media_group_id,
            location=location,
            reply_to_message=reply_to_message,
            entities=entities,
            username=username,
            chat_title=chat_title,
            date=date,
        ),
    }


def callback_update_json(
    update_id: int,
    user_id: int,
    data: str,
    message_chat_id: int,
    message_id: int,
    *,
    user_name: str = "User",
    username: str | None = None,
    chat_type: ChatType | None = None,
    message_text: str = "…",
    reply_markup: Mapping[str, Any] | InlineKeyboardMarkup | None = None,
    bot_user: Mapping[str, Any] | None = None,
    date: int | None = None,
) -> dict[str, Any]:
    """A button press on a message the bot sent earlier (``message.from`` is the bot)."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": dict(bot_user or BOT_USER_JSON),
        "chat": chat_json(message_chat_id, chat_type, first_name=user_name),
        "date": int(time.time()) if date is None else date,
        "text": message_text,
    }
    if reply_markup is not None:
        message["reply_markup"] = _to_json_dict(reply_markup)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cbq-{update_id}-{user_id}",
            "from": user_json(user_id, user_name, username),
            "message": message,
            "chat_instance": str(abs(message_chat_id) * 31 + 7),
            "data": data,
        },
    }


def _to_update(data: dict[str, Any], bot: Bot | None) -> Update:
    # Mounting the bot here lets Dispatcher.feed_update skip its dump/validate round trip.
    if bot is None:
        return Update.model_validate(data)
    return Update.model_validate(data, context={"bot": bot})


def make_message_update(
    update_id: int,
    chat_id: int,
    chat_type: ChatType,
    user_id: int,
    user_name: str,
    text: str | None = None,
    caption: str | None = None,
    photo_file_id: str | None = None,
    media_group_id: str | None = None,
    location: tuple[float, float] | Mapping[str, Any] | Location | None = None,
    reply_to_message: Mapping[str, Any] | Message | None = None,
    entities: Sequence[Mapping[str, Any] | MessageEntity] | None = None,
    message_id: int | None = None,
    *,
    username: str | None = None,
    chat_title: str | None = None,
    date: int | None = None,
    bot: Bot | None = None,
) -> Update:
    """Real ``Update`` with a message; pass ``bot`` to mount it (faster ``feed_update``)."""
    data = message_update_json(
        update_id,
        chat_id,
        chat_type,
        user_id,
        user_name,
        text=text,
        caption=caption,
        photo_file_id=photo_file_id,
        media_group_id=media_group_id,
        location=location,
        reply_to_message=reply_to_message,
        entities=entities,
        message_id=message_id,
        username=username,
        chat_title=chat_title,
        date=date,
    )
    return _to_update(data, bot)


def make_callback_update(
    update_id: int,
    user_id: int,
    data: str,
    message_chat_id: int,
    message_id: int,
    *,
    user_name: str = "User",
    username: str | None = None,
    chat_type: ChatType | None = None,
    message_text: str = "…",
    reply_markup: Mapping[str, Any] | InlineKeyboardMarkup | None = None,
    bot: Bot | None = None,
) -> Update:
    payload = callback_update_json(
        update_id,
        user_id,
        data,
        message_chat_id,
        message_id,
        user_name=user_name,
        username=username,
        chat_type=chat_type,
        message_text=message_text,
        reply_markup=reply_markup,
    )
    return _to_update(payload, bot)


# --------------------------------------------------------------------------- recording session

Responder = Callable[[Bot, TelegramMethod[Any]], Any]


class RecordingSession(BaseSession):
    """Records every method object in ``requests`` and answers like Telegram would.

    Only the Bot API methods the product calls are answered (see ``_responders``); any other
    raises NotImplementedError, so a new call shows up here first.
    ``results[i]`` is what ``requests[i]`` returned (or the exception it raised).
    Sent messages get ids counting up from ``first_message_id`` (high by default so they
    never collide with ids of incoming test updates).
    """

    def __init__(
        self,
        *,
        bot_user: User | None = None,
        first_message_id: int = 1_000_000,
        admin_ids: Iterable[int] = (BOT_ID,),
    ) -> None:
        super().__init__()
        self.bot_user = bot_user or default_bot_user()
        self.requests: list[TelegramMethod[Any]] = []
        self.results: list[Any] = []
        self.messages: dict[tuple[ChatId, int], Message] = {}
        self.admin_ids: set[int] = set(admin_ids)
        self.files: dict[str, bytes] = {}
        self.webhook_url = ""
        self.closed = False
        self._next_message_id = first_message_id
        self._queued: dict[MethodType, deque[Responder]] = {}
        self._responders: dict[MethodType, Responder] = {
            SendMessage: self._send_message,
            SendPhoto: self._send_photo,
            SendMediaGroup: self._send_media_group,
            EditMessageReplyMarkup: self._edit_reply_markup,
            AnswerCallbackQuery: _true,
            DeleteWebhook: self._delete_webhook,
            SetWebhook: self._set_webhook,
            GetMe: self._get_me,
            GetChatMember: self._get_chat_member,
            GetFile: self._get_file,
        }

    # -- test controls ------------------------------------------------------------------

    def queue_result(self, method: MethodType, result: Any, count: int = 1) -> None:
        """The next ``count`` calls of ``method`` return ``result`` as-is."""
        self._queued.setdefault(method, deque()).extend([lambda _b, _m: result] * count)

    def requests_of(self, method: MethodType) -> list[Any]:
        return [r for r in self.requests if type(r) is method]

    def sent_texts(self, chat_id: ChatId | None = None) -> list[str]:
        """Texts of successful ``SendMessage`` calls, optionally to one chat."""
        return [
            r.text
            for r, res in zip(self.requests, self.results, strict=True)
            if type(r) is SendMessage
            and not isinstance(res, BaseException)
            and (chat_id is None or r.chat_id == chat_id)
        ]

    def clear(self) -> None:
        self.requests.clear()
        self.results.clear()

    # -- BaseSession ----------------------------------------------------------------------

    async def close(self) -> None:
        self.closed = True

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - signature fixed by BaseSession
    ) -> TelegramType:
        index = len(self.requests)
        self.requests.append(method)
        self.results.append(_PENDING)
        method_type = type(method)
        try:
            queue = self._queued.get(method_type)
            responder = queue.popleft() if queue else self._responders.get(method_type)
            result = (responder or _not_used)(bot, method)
        except BaseException as exc:
            self.results[index] = exc
            raise
        self.results[index] = result
        return cast(TelegramType, result)

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - signature fixed by BaseSession
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        path = url.rsplit("/", 1)[-1]
        yield self.files.get(path, b"\xff\xd8\xff\xe0fake-jpeg")

    # -- responders -----------------------------------------------------------------------

    def _chat(self, chat_id: ChatId) -> Chat:
        return Chat.model_validate(chat_json(int(chat_id)))

    def _message(self, bot: Bot, chat_id: ChatId, m: Any, **fields: Any) -> Message:
        message_id = self._next_message_id
        self._next_message_id += 1
        markup = getattr(m, "reply_markup", None)
        if isinstance(markup, InlineKeyboardMarkup):
            fields["reply_markup"] = markup
        reply_to = self._reply_target(chat_id, m)
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        message = Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=self._chat(chat_id),
            from_user=self.bot_user,
            **fields,
        ).as_(bot)
        self.messages[(chat_id, message_id)] = message
        return message

    def _reply_target(self, chat_id: ChatId, m: Any) -> Message | None:
        target_id = getattr(getattr(m, "reply_parameters", None), "message_id", None)
        target = None if target_id is None else self.messages.get((chat_id, target_id))
        if target is None or target.reply_to_message is None:
            return target
        return target.model_copy(update={"reply_to_message": None})

    def _send_message(self, bot: Bot, m: TelegramMethod[Any]) -> Message:
        sm = cast(SendMessage, m)
        return self._message(bot, sm.chat_id, sm, text=sm.text)

    def _send_photo(self, bot: Bot, m: TelegramMethod[Any]) -> Message:
        sp = cast(SendPhoto, m)
        file_id = sp.photo if isinstance(sp.photo, str) else f"photo-{self._next_message_id}"
        photo = [PhotoSize.model_validate(s) for s in photo_sizes_json(file_id)]
        return self._message(bot, sp.chat_id, sp, photo=photo, caption=sp.caption)

    def _send_media_group(self, bot: Bot, m: TelegramMethod[Any]) -> list[Message]:
        smg = cast(SendMediaGroup, m)
        group_id = str(self._next_message_id)
        messages = []
        for item in smg.media:  # the product sends photos only
            file_id = item.media if isinstance(item.media, str) else f"file-{self._next_message_id}"
            photo = [PhotoSize.model_validate(s) for s in photo_sizes_json(file_id)]
            messages.append(self._message(bot, smg.chat_id, smg, media_group_id=group_id,
                                          photo=photo, caption=item.caption))
        return messages

    def _edit_reply_markup(self, bot: Bot, m: TelegramMethod[Any]) -> Message:
        em = cast(EditMessageReplyMarkup, m)
        chat_id, message_id = cast(ChatId, em.chat_id), cast(int, em.message_id)
        current = self.messages.get((chat_id, message_id))
        if current is None:
            current = Message(message_id=message_id, date=datetime.now(UTC),
                              chat=self._chat(chat_id), from_user=self.bot_user)
        elif current.reply_markup == em.reply_markup:
            self._raise_api_error(bot, m, 400, description=NOT_MODIFIED)
        edited = current.model_copy(
            update={"reply_markup": em.reply_markup, "edit_date": datetime.now(UTC)}).as_(bot)
        self.messages[(chat_id, message_id)] = edited
        return edited

    def _raise_api_error(
        self, bot: Bot, m: TelegramMethod[Any], status: int, *, description: str
    ) -> NoReturn:
        body = error_body(status, description=description)
        self.check_response(bot, m, status, self.json_dumps(body))
        raise AssertionError(f"check_response accepted an error body: {body}")

    def _get_me(self, _bot: Bot, _m: TelegramMethod[Any]) -> User:
        return self.bot_user

    def _delete_webhook(self, _bot: Bot, _m: TelegramMethod[Any]) -> bool:
        self.webhook_url = ""
        return True

    def _set_webhook(self, _bot: Bot, m: TelegramMethod[Any]) -> bool:
        self.webhook_url = cast(SetWebhook, m).url
        return True

    def _get_chat_member(self, _bot: Bot, m: TelegramMethod[Any]) -> ChatMemberUnion:
        gm = cast(GetChatMember, m)
        user = (
            self.bot_user
            if gm.user_id == self.bot_user.id
            else User(id=gm.user_id, is_bot=False, first_name=f"User {gm.user_id}")
        )
        if gm.user_id in self.admin_ids:
            return admin_member(user)
        return ChatMemberMember(user=user)

    def _get_file(self, _bot: Bot, m: TelegramMethod[Any]) -> File:
        file_id = cast(GetFile, m).file_id
        return File(
            file_id=file_id,
            file_unique_id=file_id[-12:],
            file_size=len(self.files.get(file_id, b"")) or 180_000,
            file_path=f"photos/{file_id}",
        )


def _not_used(_bot: Bot, m: TelegramMethod[Any]) -> NoReturn:
    raise NotImplementedError(
        f"the product does not call {type(m).__name__}; answer it in RecordingSession "
        "if it starts to, or use queue_result()"
    )


def _true(_bot: Bot, _m: TelegramMethod[Any]) -> bool:
    return True


def admin_member(user: User) -> ChatMemberAdministrator:
    # Required flags differ between aiogram releases, so fill them from the model itself.
    rights = {
        name: name in _ADMIN_RIGHTS_TRUE
        for name, field in ChatMemberAdministrator.model_fields.items()
        if field.annotation is bool or name in _ADMIN_RIGHTS_TRUE
    }
    return ChatMemberAdministrator.model_validate({"user": user, **rights})


def error_body(
    status: int, *, retry_after: int | None = None, description: str | None = None
) -> dict[str, Any]:
    """Telegram-shaped error response body."""
    if status == 429 and retry_after is None:
        retry_after = 1
    if description is None:
        description = {
            400: "Bad Request: bad request",
            401: "Unauthorized",
            403: "Forbidden: bot was blocked by the user",
            404: "Not Found",
            409: "Conflict: terminated by other getUpdates request",
            429: f"Too Many Requests: retry after {retry_after}",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, f"Error {status}")
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


class RecordingBot(Bot):
    """``Bot`` wired to a :class:`RecordingSession`; token ``42:TEST`` gives ``bot.id == 42``."""

    session: RecordingSession

    def __init__(
        self, token: str = f"{BOT_ID}:TEST", session: RecordingSession | None = None, **kwargs: Any
    ) -> None:
        super().__init__(token, session=session or RecordingSession(), **kwargs)

    @property
    def requests(self) -> list[TelegramMethod[Any]]:
        return self.session.requests

    def requests_of(self, method: MethodType) -> list[Any]:
        return self.session.requests_of(method)

    def sent_texts(self, chat_id: ChatId | None = None) -> list[str]:
        return self.session.sent_texts(chat_id)
