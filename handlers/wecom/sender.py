"""Outbox messages to staff on the WeCom app: text, images from the media store, and ticket
buttons as template cards (handlers.wecom.cards). WeCom has no messaging window for members
of the corp: the app may write to them at any time.

Text messages may be 2048 bytes of UTF-8: max_text is 680 characters (Chinese text, 3 bytes
a character, fits), and a part that still does not fit is cut again at line ends.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.delivery.capabilities import Capabilities
from bot.delivery.media import MediaStore
from bot.messages import (
    Outbound,
    PermanentSendError,
    RetryLater,
    SendError,
    TransientSendError,
    Undeliverable,
)
from handlers.wechat.api import TOKEN_ERRORS, Unreachable, WeChatError
from handlers.wechat.oa_sender import byte_pieces
from handlers.wechat.tokens import TokenUnavailable
from handlers.wechat.uploads import Uploads
from handlers.wecom.api import WeComClient
from handlers.wecom.cards import card_for
from models.enums import Channel

log = logging.getLogger(__name__)

SEND = "/cgi-bin/message/send"
UPDATE_CARD = "/cgi-bin/message/update_template_card"
CAPABILITIES = Capabilities(buttons=6, button_chars=10, quoting=False, max_text=680,
                            reusable_media=False, deep_links=False)

NOT_REACHABLE = 81013  # the user is not in the app's visible range, or has left the corp
API_FREQ = 45009
CONCURRENCY = 45033


def mapped(e: WeChatError) -> SendError:
    what = f"WeCom errcode {e.errcode}"
    if e.errcode == NOT_REACHABLE:
        return Undeliverable(f"{what}: not a member the app can reach")
    if e.errcode in TOKEN_ERRORS:
        return TransientSendError(f"{what}: access token refused after a refresh")
    if e.errcode == API_FREQ:
        return RetryLater(60.0, f"{what}: API rate limit")
    if e.errcode == CONCURRENCY:
        return RetryLater(5.0, f"{what}: too many calls at once")
    return PermanentSendError(f"{what}: {e.errmsg[:120]}")


class WeComSender:
    channel = Channel.WECOM.value
    capabilities = CAPABILITIES

    def __init__(self, api: WeComClient, agent_id: int, media: MediaStore | None) -> None:
        self.api, self.agent_id = api, agent_id
        self.uploads = Uploads(api, media)

    async def send(self, msg: Outbound) -> str | None:
        msgid: str | None = None
        try:
            for ref in msg.photos:
                media_id = await self.uploads.media_id(ref)
                if media_id is not None:
                    msgid = await self._send(msg.chat_id, "image", {"media_id": media_id})
            card = card_for(msg)
            text = msg.text if card is None else card.text_first
            for piece in byte_pieces(text):
                if piece.strip():
                    msgid = await self._send(msg.chat_id, "text", {"content": piece})
            if card is not None:
                msgid = await self._send(msg.chat_id, "template_card", card.body)
        except WeChatError as e:
            raise mapped(e) from None
        except (Unreachable, TokenUnavailable) as e:
            raise TransientSendError(f"{type(e).__name__}: {e}") from None
        return msgid

    async def _send(self, userid: str, msgtype: str, body: dict[str, Any]) -> str | None:
        got = await self.api.call(SEND, {"touser": userid, "agentid": self.agent_id,
                                         "msgtype": msgtype, msgtype: body})
        if userid.lower() in str(got.get("invaliduser", "")).lower().split("|"):
            raise Undeliverable("WeCom: not a member the app can reach")
        msgid = got.get("msgid")
        return None if msgid is None else str(msgid)

    async def update_card(self, userid: str, response_code: str, label: str) -> None:
        """Grey out a clicked card's buttons and show `label` instead (cosmetic: a failure is
        logged, the state change it shows is already committed)."""
        try:
            await self.api.call(UPDATE_CARD, {
                "userids": [userid], "agentid": self.agent_id,
                "response_code": response_code, "button": {"replace_name": label[:20]}})
        except (WeChatError, Unreachable, TokenUnavailable) as e:
            log.info("wecom: a card could not be updated (%s)", type(e).__name__)
