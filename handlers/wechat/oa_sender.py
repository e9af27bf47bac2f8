"""Outbox messages to residents on the Official Account: customer-service messages inside the
48-hour window, template messages outside it (the outbox decides which; see
bot.delivery.outbox._send), and WeChat's errors mapped to retry / undeliverable / dead.

Customer-service texts may be 2048 bytes of UTF-8. Capabilities count characters, so
max_text is 680: Chinese text (3 bytes a character) fits; a part that still does not (emoji
are 4 bytes) is cut again here at line ends.

Photos cannot be re-sent by another channel's id, nor by WeChat's own after three days: each
goes out from the media store (media/upload, then an image message); an upload is re-used for
two days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.delivery.capabilities import Capabilities
from bot.delivery.media import MediaStore
from bot.messages import (
    Outbound,
    PermanentSendError,
    RetryLater,
    SendError,
    TemplateNotice,
    TransientSendError,
    Undeliverable,
)
from handlers.wechat.api import TOKEN_ERRORS, OAClient, Unreachable, WeChatError
from handlers.wechat.tokens import TokenUnavailable
from handlers.wechat.uploads import Uploads
from models.enums import Channel

log = logging.getLogger(__name__)

TEXT_BYTES = 2048
CAPABILITIES = Capabilities(buttons=0, quoting=False, max_text=680, window_hours=48,
                            templates=True, reusable_media=False, deep_links=False)

# errcode -> what it means for this one message
OUTSIDE_WINDOW = 45015  # the resident has not written for 48 hours
OVER_QUOTA = 45047  # customer-service messages per resident interaction used up
UNFOLLOWED = 43004  # the resident unfollowed the account
REFUSED_NOTICES = 43101  # the resident turned this account's notifications off
API_DAILY_LIMIT = 45009
API_MINUTE_LIMIT = 45011

FIELDS = ("number", "state", "time", "line")
# how much of a value each template key type shows (WeChat cuts the rest off, or refuses)
TYPE_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10}


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """Which template, and which of its keys carries number / state / time / line."""

    template_id: str
    keys: dict[str, str]

    @classmethod
    def parse(cls, template_id: str, mapping: str) -> TemplateSpec:
        keys: dict[str, str] = {}
        for item in mapping.split(","):
            name, sep, key = item.partition("=")
            name, key = name.strip(), key.strip()
            if not sep or name not in FIELDS or not key.replace("_", "").isalnum():
                raise ValueError(f"WECHAT_OA_TEMPLATE_FIELDS: {item.strip()!r} is not "
                                 f"one of {', '.join(FIELDS)}=<template key>")
            keys[name] = key
        if not keys:
            raise ValueError("WECHAT_OA_TEMPLATE_FIELDS maps no field")
        return cls(template_id, keys)


def fit(key: str, value: str) -> str:
    limit = next((n for prefix, n in TYPE_LIMITS.items() if key.startswith(prefix)), 200)
    return value if len(value) <= limit else value[:limit - 1] + "…"


def byte_pieces(text: str, limit: int = TEXT_BYTES) -> list[str]:
    """`text` in pieces of at most `limit` UTF-8 bytes, cut at line ends where possible."""
    if len(text.encode()) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line.encode()) > limit:
            cut = limit // 4
            while len(line[:cut + 1].encode()) <= limit:
                cut += 1
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    if current:
        pieces.append(current)
    return pieces


def mapped(e: WeChatError) -> SendError:
    what = f"WeChat errcode {e.errcode}"
    if e.errcode == OUTSIDE_WINDOW:
        return Undeliverable(f"{what}: outside the 48-hour customer-service window")
    if e.errcode == OVER_QUOTA:
        # the quota comes back only when the resident writes again: retrying cannot help,
        # and RetryLater would pause the whole channel, not just this resident
        return Undeliverable(f"{what}: customer-service quota for this interaction used up")
    if e.errcode in (UNFOLLOWED, REFUSED_NOTICES):
        return Undeliverable(f"{what}: the resident cannot receive messages from the account")
    if e.errcode in TOKEN_ERRORS:
        # refused again right after a refresh: another process refreshed meanwhile
        return TransientSendError(f"{what}: access token refused after a refresh")
    if e.errcode == API_DAILY_LIMIT:
        return RetryLater(3600.0, f"{what}: the account's daily API quota is used up")
    if e.errcode == API_MINUTE_LIMIT:
        return RetryLater(60.0, f"{what}: API rate limit")
    return PermanentSendError(f"{what}: {e.errmsg[:120]}")


class OASender:
    channel = Channel.WECHAT.value

    def __init__(self, api: OAClient, media: MediaStore | None, template: TemplateSpec | None,
                 tz: ZoneInfo) -> None:
        self.api, self.media, self.template, self.tz = api, media, template, tz
        # without a template, a message outside the window is undeliverable (the outbox asks)
        self.capabilities = replace(CAPABILITIES, templates=template is not None)
        self.uploads = Uploads(api, media)

    async def send(self, msg: Outbound) -> str | None:
        try:
            for ref in msg.photos:
                media_id = await self.uploads.media_id(ref)
                if media_id is not None:
                    await self._custom(msg.chat_id, "image", {"media_id": media_id})
            for piece in byte_pieces(msg.text):
                if piece.strip():
                    await self._custom(msg.chat_id, "text", {"content": piece})
        except WeChatError as e:
            raise mapped(e) from None
        except (Unreachable, TokenUnavailable) as e:
            raise TransientSendError(f"{type(e).__name__}: {e}") from None
        return None  # customer-service messages have no id (and the OA has no quoting)

    async def send_template(self, notice: TemplateNotice) -> str | None:
        if self.template is None:
            raise Undeliverable("no template message configured (WECHAT_OA_TEMPLATE_ID)")
        values = {"number": notice.number, "state": notice.state,
                  "time": _local(notice.at, self.tz), "line": notice.line}
        data = {key: {"value": fit(key, values[name])}
                for name, key in self.template.keys.items()}
        try:
            got = await self.api.call("/cgi-bin/message/template/send", {
                "touser": notice.chat_id, "template_id": self.template.template_id,
                "data": data})
        except WeChatError as e:
            raise mapped(e) from None
        except (Unreachable, TokenUnavailable) as e:
            raise TransientSendError(f"{type(e).__name__}: {e}") from None
        msgid = got.get("msgid")
        return None if msgid is None else str(msgid)

    async def _custom(self, openid: str, msgtype: str, body: dict[str, str]) -> None:
        await self.api.call("/cgi-bin/message/custom/send",
                            {"touser": openid, "msgtype": msgtype, msgtype: body})


def _local(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M}"
