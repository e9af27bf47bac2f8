"""The least a channel can be: no buttons, no quoting, 600-character texts, a 48-hour window
with template notifications outside it, media ids that can't be re-sent.

WeChat's Official Account is close to this. A story that works here works on any channel: the
core's words and numbered choices carry it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from bot.delivery.capabilities import Capabilities
from bot.messages import Inbound, Outbound, TemplateNotice
from models.enums import ChatKind

CHANNEL = "minimal"
MINIMAL = Capabilities(buttons=0, quoting=False, max_text=600, window_hours=48, templates=True,
                       reusable_media=False, deep_links=False)


@dataclass
class MinimalSender:
    """Records what would reach each chat; fails nothing."""

    channel: str = CHANNEL
    capabilities: Capabilities = MINIMAL
    sent: list[Outbound] = field(default_factory=list)
    templates: list[TemplateNotice] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def send(self, msg: Outbound) -> str | None:
        assert not msg.buttons, "the renderer must turn buttons into numbered choices"
        assert len(msg.text) <= MINIMAL.max_text, len(msg.text)
        self.sent.append(msg)
        return str(next(self._ids))

    async def send_template(self, notice: TemplateNotice) -> str | None:
        self.templates.append(notice)
        return str(next(self._ids))

    def texts(self, chat: str) -> list[str]:
        return [m.text for m in self.sent if m.chat_id == chat]


@dataclass
class MinimalChat:
    """People writing on the minimal channel: every message an Inbound into the core."""

    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def private(self, user: str, text: str, name: str = "", at: datetime | None = None
                ) -> Inbound:
        n = next(self.ids)
        ib = Inbound(channel=CHANNEL, external_id=f"{user}:{n}", chat_id=user,
                     chat_kind=ChatKind.PRIVATE, sender_id=user, sender_name=name or user,
                     text=text, message_id=str(n))
        if at is not None:
            ib.received_at = at
        return ib

    def group(self, chat: str, user: str, text: str, name: str = "") -> Inbound:
        n = next(self.ids)
        return Inbound(channel=CHANNEL, external_id=f"{chat}:{n}", chat_id=chat,
                       chat_kind=ChatKind.GROUP, sender_id=user, sender_name=name or user,
                       text=text, message_id=str(n))
