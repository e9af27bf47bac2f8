"""A fake Telegram Bot API HTTP server for end-to-end tests.

Point the bot at it with ``TELEGRAM_API_BASE=api.base_url`` (aiogram:
``TelegramAPIServer.from_base(api.base_url)``). It runs in the test's event loop.

Request decoding follows what aiogram actually sends: a form (urlencoded, or multipart when
files are attached) where every non-string value is JSON-encoded and strings are sent raw.
Uploaded files arrive as separate parts referenced by ``attach://<name>`` — even for a
top-level ``photo`` — and are kept in ``ApiCall.files``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import html
import json
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from aiogram.types import ChatMemberAdministrator
from aiohttp import BodyPartReader, web
from pydantic import BaseModel

from .recording import (
    _ADMIN_RIGHTS_TRUE,
    NOT_MODIFIED,
    chat_json,
    error_body,
    photo_sizes_json,
)

logger = logging.getLogger(__name__)

ChatId = int | str
Params = dict[str, Any]
Handler = Callable[["ApiCall"], Any]

# Telegram string parameters: aiogram sends them raw, so JSON-decoding "123" or "true" here
# would turn a user's text into a number.
_STRING_PARAMS = frozenset(
    {"text", "caption", "parse_mode", "callback_query_id", "url", "secret_token", "ip_address",
     "file_id", "photo"}
)



_HTML_TAG = re.compile(r"<[^>]+>")
_T = TypeVar("_T")
_DEFAULT_FILE = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-jpeg"
_SEND_LIMIT = 4096
_CAPTION_LIMIT = 1024


@dataclass(slots=True)
class UploadedFile:
    name: str
    filename: str | None
    content: bytes
    content_type: str | None = None


@dataclass(slots=True)
class ApiCall:
    """One HTTP call as the server saw it. ``method`` is canonical camelCase when known."""

    method: str
    params: Params
    chat_id: ChatId | None
    files: dict[str, UploadedFile] = field(default_factory=dict)
    status: int | None = None
    response: dict[str, Any] | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return None if self.response is None else self.response.get("result")


@dataclass(slots=True)
class _Fault:
    status: int
    retry_after: int | None
    description: str | None


@dataclass(slots=True)
class _Stall:
    method: str
    chat_id: ChatId | None
    seconds: float
    count: int


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.body = error_body(status, retry_after=retry_after, description=description)
        self.status = status


def _fill_required(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Adds falsy values for required fields aiogram expects but this fake does not model.

    aiogram marks new Bot API flags as required in each release; without this a newer aiogram
    would reject the fake's JSON with ClientDecodeError.
    """
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in data or not info.is_required():
            continue
        annotation = info.annotation
        if annotation is bool:
            data[key] = False
        elif annotation is int:
            data[key] = 0
        elif annotation is str:
            data[key] = ""
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            data[key] = _fill_required(annotation, {})
    return data


def _decode_param(name: str, raw: str) -> Any:
    if name == "chat_id":
        try:
            return int(raw)
        except ValueError:
            return raw
    if name in _STRING_PARAMS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _text_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeBotAPI:
    """``async with FakeBotAPI(token="123:ABC") as api:`` then use ``api.base_url``."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        host: str = "127.0.0.1",
        bot_username: str = "grid_intake_bot",
        bot_first_name: str = "网格报事助手",
        max_poll_wait: float = 1.0,
        first_message_id: int = 1000,
    ) -> None:
        self.token = token
        self.host = host
        self.max_poll_wait = max_poll_wait
        self.bot_user: dict[str, Any] = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }
        self.calls: list[ApiCall] = []
        self._sent: list[dict[str, Any]] = []
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[tuple[ChatId, int], dict[str, Any]] = {}
        self.member_statuses: dict[tuple[ChatId, int], str] = {}
        self.files: dict[str, tuple[str, bytes]] = {}
        self.webhook_url = ""
        self._pending: list[dict[str, Any]] = []
        self._confirmed_offset = 0
        self._next_update_id = 1
        self._next_message_id = first_message_id
        self._next_file = 1
        self._faults: dict[str, deque[_Fault]] = {}
        self._stalls: list[_Stall] = []
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        # the Bot API methods the product calls; any other is answered 404
        self._handlers: dict[str, Handler] = {
            "getMe": lambda _c: self.bot_user,
            "getUpdates": self._get_updates,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendMediaGroup": self._send_media_group,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "answerCallbackQuery": lambda _c: True,
            "getChatMember": self._get_chat_member,
            "getFile": self._get_file,
        }
        # Telegram matches method names case-insensitively.
        self._canonical = {name.lower(): name for name in self._handlers}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBotAPI is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- test controls ---------------------------------------------------------------------

    def push_update(self, update: Mapping[str, Any]) -> int:
        """Queues an incoming update (a Bot API JSON dict) and returns its update_id."""
        data = dict(update)
        if "update_id" not in data:
            data["update_id"] = self._next_update_id
        update_id = int(data["update_id"])
        self._next_update_id = max(self._next_update_id, update_id + 1)
        for key in ("message", "edited_message"):
            if isinstance(data.get(key), dict):
                data[key] = self._remember_incoming(dict(data[key]))
        query = data.get("callback_query")
        if isinstance(query, dict) and isinstance(query.get("message"), dict):
            message = query["message"]
            chat_id = message.get("chat", {}).get("id")
            # Telegram attaches the message as it is now, so prefer what the bot really sent.
            known = self.messages.get((chat_id, message.get("message_id")))
            data["callback_query"] = {
                **query,
                "message": known or self._remember_incoming(dict(message)),
            }
        ids = [u["update_id"] for u in self._pending]
        self._pending.insert(bisect.bisect_right(ids, update_id), data)
        self._notify()
        return update_id

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = None,
        count: int = 1,
        description: str | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` get a Telegram-shaped error instead."""
        name = self._canonical.get(method.lower(), method)
        fault = _Fault(status, retry_after, description)
        self._faults.setdefault(name, deque()).extend([fault] * count)

    def stall(
        self, method: str, seconds: float, *, chat_id: ChatId | None = None, count: int = 1
    ) -> None:
        """The next ``count`` calls of ``method`` (to ``chat_id`` only, if given) are answered
        ``seconds`` late, or as soon as the fake closes: a Telegram that took the request and
        hangs. The call is in ``calls`` with ``status`` None while it hangs; then it is answered
        as usual (a queued ``fail_next`` fault included).
        """
        name = self._canonical.get(method.lower(), method)
        self._stalls.append(_Stall(name, chat_id, seconds, count))

    def _take_stall(self, call: ApiCall) -> float | None:
        for stall in self._stalls:
            if stall.method == call.method and stall.chat_id in (None, call.chat_id):
                stall.count -= 1
                if stall.count <= 0:
                    self._stalls.remove(stall)
                return stall.seconds
        return None

    def set_member_status(self, chat_id: ChatId, user_id: int, status: str) -> None:
        """administrator | member | left (default: member; the bot itself: administrator)."""
        assert status in ("administrator", "member", "left"), status
        self.member_statuses[(chat_id, user_id)] = status

    def add_file(self, file_id: str, content: bytes, file_path: str | None = None) -> None:
        self.files[file_id] = (file_path or f"photos/{file_id}.jpg", content)

    @property
    def confirmed_offset(self) -> int:
        """Highest ``offset`` any getUpdates asked with; lower update_ids are confirmed."""
        return self._confirmed_offset

    def calls_of(self, method: str) -> list[ApiCall]:
        name = self._canonical.get(method.lower(), method)
        return [c for c in self.calls if c.method == name]

    def sent(self, chat_id: ChatId | None = None) -> list[dict[str, Any]]:
        """Successful sendMessage, sendPhoto and sendMediaGroup calls.

        Each item is the decoded params plus ``method`` and ``result`` keys.
        """
        if chat_id is None:
            return list(self._sent)
        return [m for m in self._sent if m.get("chat_id") == chat_id]

    def sent_texts(self, chat_id: ChatId | None = None) -> list[str]:
        return [m["text"] for m in self.sent(chat_id) if m["method"] == "sendMessage"]

    async def wait_for_sent(
        self,
        predicate: Callable[[dict[str, Any]], bool] = lambda _m: True,
        timeout: float = 5.0,  # noqa: ASYNC109 - deadline is part of the helper's contract
        *,
        start: int = 0,
    ) -> dict[str, Any]:
        """First item of ``sent()[start:]`` matching ``predicate``, waiting for it to arrive."""

        position = start

        # Resumes where the previous wake-up stopped, so long benchmark runs stay linear.
        def find() -> dict[str, Any] | None:
            nonlocal position
            while position < len(self._sent):
                item = self._sent[position]
                position += 1
                if predicate(item):
                    return item
            return None

        return await self._wait_until(find, timeout, "a matching sent message")

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] = lambda _c: True,
        timeout: float = 5.0,  # noqa: ASYNC109 - deadline is part of the helper's contract
    ) -> ApiCall:
        def find() -> ApiCall | None:
            return next(
                (c for c in self.calls_of(method) if c.status is not None and predicate(c)), None
            )

        return await self._wait_until(find, timeout, f"a finished {method} call")

    async def wait_confirmed(
        self,
        update_id: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - deadline is part of the helper's contract
    ) -> None:
        await self._wait_until(
            lambda: self._confirmed_offset > update_id, timeout, f"confirmation of {update_id}"
        )

    async def _wait_for(self, find: Callable[[], _T | None], seconds: float) -> _T | None:
        """Re-checks ``find`` after every server-side change; None when ``seconds`` run out."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    changed = self._changed
                    found = find()
                    if found:
                        return found
                    await changed.wait()
        return None

    async def _wait_until(self, find: Callable[[], _T | None], seconds: float, what: str) -> _T:
        found = await self._wait_for(find, seconds)
        if found is None:
            recent = [f"{c.method}:{c.status}" for c in self.calls[-15:]]
            raise TimeoutError(f"no {what} within {seconds}s; last calls: {recent}")
        return found

    def _notify(self) -> None:
        # Swap in a fresh event so every current waiter wakes exactly once (a broadcast).
        self._changed.set()
        self._changed = asyncio.Event()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(error_body(401, description="Unauthorized"), status=401)
        raw_method = request.match_info["method"]
        name = self._canonical.get(raw_method.lower(), raw_method)
        params, files = await self._parse(request)
        call = ApiCall(name, params, params.get("chat_id"), files)
        self.calls.append(call)
        stall = self._take_stall(call)
        if stall is not None:
            self._notify()  # waiters may look for the call that now hangs
            await self._wait_for(lambda: self._closing, stall)
        try:
            status, body = await self._respond(call)
        except Exception as exc:
            # A bug in the fake should read as one, not as an aiogram decode error.
            logger.exception("FakeBotAPI failed on %s", name)
            status, body = 500, error_body(500, description=f"Internal Server Error: fake {exc!r}")
        call.status, call.response = status, body
        if status == 200 and _is_send(name):
            self._sent.append({"method": name, **params, "result": body["result"]})
        self._notify()
        return web.json_response(body, status=status, dumps=_dumps)

    async def _respond(self, call: ApiCall) -> tuple[int, dict[str, Any]]:
        faults = self._faults.get(call.method)
        if faults:
            fault = faults.popleft()
            body = error_body(
                fault.status, retry_after=fault.retry_after, description=fault.description
            )
            return fault.status, body
        handler = self._handlers.get(call.method)
        if handler is None:
            return 404, error_body(404, description="Not Found: method not found")
        try:
            result = handler(call)
            if asyncio.iscoroutine(result):
                result = await result
        except ApiError as exc:
            return exc.status, exc.body
        return 200, {"ok": True, "result": result}

    async def _parse(self, request: web.Request) -> tuple[Params, dict[str, UploadedFile]]:
        raw: dict[str, str] = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if request.content_type == "application/json":
            body = await request.json()
            return {**{k: _decode_param(k, v) for k, v in raw.items()}, **body}, files
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content = await part.read(decode=True)
                    files[part.name] = UploadedFile(
                        part.name, part.filename, bytes(content), part.headers.get("Content-Type")
                    )
                else:
                    raw[part.name] = await part.text()
        elif request.can_read_body:
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        return {k: _decode_param(k, v) for k, v in raw.items()}, files

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(error_body(401, description="Unauthorized"), status=401)
        path = request.match_info["path"]
        for file_path, content in self.files.values():
            if file_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return web.json_response(error_body(404, description="Not Found"), status=404)

    # -- getUpdates / webhook --------------------------------------------------------------

    async def _get_updates(self, call: ApiCall) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = call.params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
            if offset > self._confirmed_offset:
                self._confirmed_offset = offset
                self._notify()
        elif isinstance(offset, int) and offset < 0:
            self._pending = self._pending[offset:]
        timeout = min(float(call.params.get("timeout") or 0), self.max_poll_wait)
        if not self._pending and timeout > 0 and not self._closing:
            await self._wait_for(lambda: bool(self._pending) or self._closing, timeout)
        limit = int(call.params.get("limit") or 100)
        return self._pending[:limit]

    def _delete_webhook(self, call: ApiCall) -> bool:
        self.webhook_url = ""
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, call: ApiCall) -> bool:
        url = call.params.get("url")
        if not isinstance(url, str):
            raise ApiError(400, "Bad Request: bad webhook: URL is empty")
        self.webhook_url = url
        if call.params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    # -- messages --------------------------------------------------------------------------

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if not isinstance(chat_id, int):  # the product sends numeric ids only
            raise ApiError(400, "Bad Request: chat not found")
        return self.chats.get(chat_id) or chat_json(chat_id)

    def _remember_incoming(self, message: dict[str, Any]) -> dict[str, Any]:
        chat = message.get("chat")
        if isinstance(chat, dict) and "id" in chat:
            self.chats.setdefault(chat["id"], chat)
        if "message_id" not in message:
            message["message_id"] = self._take_message_id()
        else:
            self._next_message_id = max(self._next_message_id, int(message["message_id"]) + 1)
        message.setdefault("date", int(time.time()))
        if isinstance(chat, dict) and "id" in chat:
            self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _take_message_id(self) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _new_message(self, call: ApiCall, **fields: Any) -> dict[str, Any]:
        chat = self._chat(call.params.get("chat_id"))
        message: dict[str, Any] = {
            "message_id": self._take_message_id(),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        reply_to = self._reply_target(chat["id"], call.params)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update({k: v for k, v in fields.items() if v is not None})
        markup = call.params.get("reply_markup")
        # Telegram only echoes inline keyboards; aiogram's Message.reply_markup rejects others.
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    def _reply_target(self, chat_id: int, params: Params) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        target_id = reply.get("message_id") if isinstance(reply, dict) else None
        if not isinstance(target_id, int):
            return None
        target = self.messages.get((chat_id, target_id))
        if target is None:
            return None
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    def _file_id(self, value: Any, files: dict[str, UploadedFile], kind: str) -> str:
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value.removeprefix("attach://"))
            if upload is None:
                raise ApiError(
                    400, f"Bad Request: wrong file identifier/HTTP URL specified: {value}"
                )
            file_id = f"{kind}-{self._next_file:06d}"
            self._next_file += 1
            self.add_file(file_id, upload.content, f"{kind}s/{file_id}_{upload.filename}")
            return file_id
        if not isinstance(value, str) or not value:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        return value

    @staticmethod
    def _check_text(text: Any, limit: int, what: str, parse_mode: Any) -> None:
        if text is None:
            return
        # Telegram counts the rendered text, so HTML markup does not count towards the limit.
        if parse_mode == "HTML":
            text = html.unescape(_HTML_TAG.sub("", str(text)))
        length = _text_length(str(text))
        if length > limit:
            raise ApiError(400, f"Bad Request: {what} is too long")

    def _send_message(self, call: ApiCall) -> dict[str, Any]:
        text = call.params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        self._check_text(text, _SEND_LIMIT, "message", call.params.get("parse_mode"))
        return self._new_message(call, text=text, entities=call.params.get("entities"))

    def _send_photo(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        self._check_text(p.get("caption"), _CAPTION_LIMIT, "message caption", p.get("parse_mode"))
        file_id = self._file_id(p.get("photo"), call.files, "photo")
        return self._new_message(
            call,
            photo=photo_sizes_json(file_id),
            caption=p.get("caption"),
            caption_entities=p.get("caption_entities"),
        )

    def _send_media_group(self, call: ApiCall) -> list[dict[str, Any]]:
        media = call.params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: media group must include 2-10 items")
        group_id = str(self._next_message_id)
        messages = []
        for item in media:
            if item.get("type") != "photo":  # the product sends albums of photos only
                raise ApiError(400, "Bad Request: the fake takes photos only")
            file_id = self._file_id(item.get("media"), call.files, "photo")
            messages.append(self._new_message(
                call, media_group_id=group_id, caption=item.get("caption"),
                photo=photo_sizes_json(file_id)))
        return messages

    def _edit_reply_markup(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        chat = self._chat(p.get("chat_id"))
        message_id = p.get("message_id")
        if not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        key = (chat["id"], message_id)
        current = self.messages.get(key)
        if current is None:
            current = {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
            }
        markup = p.get("reply_markup")
        markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if current.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        edited = {k: v for k, v in {**current, "reply_markup": markup}.items() if v is not None}
        edited["edit_date"] = int(time.time())
        self.messages[key] = edited
        return edited

    # -- chats / files ---------------------------------------------------------------------

    def _get_chat_member(self, call: ApiCall) -> dict[str, Any]:
        chat = self._chat(call.params.get("chat_id"))
        user_id = call.params.get("user_id")
        if not isinstance(user_id, int):
            raise ApiError(400, "Bad Request: invalid user_id specified")
        if user_id == self.bot_user["id"]:
            user = self.bot_user
            default = "administrator"
        else:
            user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
            default = "member"
        status = self.member_statuses.get((chat["id"], user_id), default)
        data: dict[str, Any] = {"status": status, "user": user}
        if status == "administrator":
            _fill_required(ChatMemberAdministrator, data)
            data.update(dict.fromkeys(_ADMIN_RIGHTS_TRUE, True))
        return data

    def _get_file(self, call: ApiCall) -> dict[str, Any]:
        file_id = call.params.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise ApiError(400, "Bad Request: invalid file_id")
        # Unknown ids (e.g. from pushed photo updates) still resolve, to a tiny JPEG-ish blob.
        if file_id not in self.files:
            self.add_file(file_id, _DEFAULT_FILE)
        file_path, content = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id[-12:],
            "file_size": len(content),
            "file_path": file_path,
        }


def _is_send(method: str) -> bool:
    return method in ("sendMessage", "sendPhoto", "sendMediaGroup")


def _dumps(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # a forged update with a lone surrogate only survives the wire as a \u escape
        return json.dumps(obj)
    return text
