"""Messages out: each fitted message as signed JSON POSTed to BRIDGE_CALLBACK_URL.

`{"id", "chat_id", "text", "reply_to", "mention", "choices": [{"n", "label"}], "media":
[{"kind", "url"}]}`. The answer decides what the outbox does: 2xx delivered (its JSON may
name the connector's own `message_id`, so a reply to that message finds its ticket), 429
and 5xx and timeouts retried (429 after its Retry-After), any other answer given up on.

Where the connector shows buttons, a message's buttons go as `choices`; a pressed one comes
back as its number in the text, so the choices are remembered for the chat like numbered
ones (bot.delivery.choices) before the message leaves.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.capabilities import Capabilities
from bot.delivery.choices import remember
from bot.delivery.media import parse_ref
from bot.messages import (
    Action,
    Outbound,
    PermanentSendError,
    RetryLater,
    TransientSendError,
)
from bot.notify.texts import t
from handlers.bridge.signing import media_sig, sign
from models.base import utcnow
from models.enums import Channel, ChatKind

log = logging.getLogger(__name__)

CH = Channel.BRIDGE.value
MEDIA_PATH = "/bridge/v1/media/"
MEDIA_LINK_S = 24 * 3600  # long enough for a connector that is behind, short enough to expire
RETRY_AFTER_S = 30.0  # a 429 without Retry-After
MAX_RETRY_AFTER_S = 3600.0


class BridgeSender:
    channel = CH

    def __init__(self, *, callback_url: str | None, secret: bytes, capabilities: Capabilities,
                 timeout: float, public_url: str = "",
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.capabilities = capabilities
        self._url = callback_url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._public = public_url.rstrip("/")
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._sm: async_sessionmaker[AsyncSession] | None = None

    def attach(self, sm: async_sessionmaker[AsyncSession],
               clock: Callable[[], datetime]) -> None:
        """The database choices are remembered in, and the service's clock (from the edge)."""
        self._sm, self._clock = sm, clock

    def media_url(self, sha256: str) -> str:
        """A link to stored media that works for MEDIA_LINK_S and cannot be guessed."""
        expires = int(self._clock().timestamp()) + MEDIA_LINK_S
        sig = media_sig(self._secret, sha256, expires)
        return f"{self._public}{MEDIA_PATH}{sha256}?expires={expires}&sig={sig}"

    def payload(self, msg: Outbound) -> tuple[dict[str, Any], list[Action]]:
        """The JSON for one fitted message, and the actions behind its choices."""
        lines = [msg.text]
        choices: list[dict[str, Any]] = []
        actions: list[Action] = []
        for row in msg.buttons:
            for b in row:
                if b.action is not None:
                    actions.append(b.action)
                    choices.append({"n": len(actions), "label": b.text})
                elif b.url:
                    lines.append(f"{b.text}：{b.url}")
                elif b.request_location:
                    lines.append(t("choices.location"))
        media = []
        for ref in msg.photos:
            origin, file_id, sha = parse_ref(ref)
            if sha:
                media.append({"kind": "photo", "url": self.media_url(sha)})
            elif origin == CH and file_id.lower().startswith(("http://", "https://")):
                media.append({"kind": "photo", "url": file_id})  # never fetched: as it came
            else:
                log.warning("bridge: a photo without stored bytes was left out")
        mention = ({"id": msg.mention_user_id, "name": msg.mention_name or ""}
                   if msg.mention_user_id else None)
        # the same on every try of a message (the outbox row and part)
        key = msg.key or uuid.uuid4().hex
        body = {"id": key, "chat_id": msg.chat_id, "text": "\n".join(lines),
                "reply_to": msg.reply_to if self.capabilities.quoting else None,
                "mention": mention, "choices": choices, "media": media}
        return body, actions

    async def send(self, msg: Outbound) -> str | None:
        if not self._url:
            raise PermanentSendError("BRIDGE_CALLBACK_URL is not set")
        body, actions = self.payload(msg)
        if actions and self._sm is not None:
            async with self._sm() as s, s.begin():
                addressee = msg.mention_user_id if msg.chat_kind == ChatKind.GROUP else None
                await remember(s, CH, msg.chat_id, addressee, actions, self._clock())
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json",
                   **sign(self._secret, int(self._clock().timestamp()), data)}
        try:
            async with self._session().post(self._url, data=data, headers=headers,
                                            allow_redirects=False) as r:
                status = r.status
                answer = await r.read() if 200 <= status < 300 else b""
                retry_after = r.headers.get("Retry-After", "")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransientSendError(f"connector unreachable ({type(e).__name__})") from None
        if 200 <= status < 300:
            return _message_id(answer) or str(body["id"])
        if status == 429:
            raise RetryLater(_seconds(retry_after), "the connector asked to slow down")
        if status >= 500:
            raise TransientSendError(f"connector answered {status}")
        raise PermanentSendError(f"connector refused the message ({status})")

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def _message_id(answer: bytes) -> str | None:
    try:
        got = json.loads(answer) if answer.strip() else None
    except ValueError:
        return None
    mid = got.get("message_id") if isinstance(got, dict) else None
    return str(mid)[:64] if isinstance(mid, str | int) and str(mid) else None


def _seconds(retry_after: str) -> float:
    try:
        return min(MAX_RETRY_AFTER_S, max(1.0, float(retry_after)))
    except ValueError:
        return RETRY_AFTER_S
