"""Platform-neutral message types: what handlers translate to and from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.delivery.capabilities import Capabilities
from bot.delivery.media import photo_ref
from models.base import utcnow
from models.enums import ChatKind

DATUMS = frozenset({"wgs84", "gcj02"})


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float
    datum: str = "wgs84"  # or "gcj02" (Chinese web maps, WeChat)

    def usable(self) -> bool:
        """A point on Earth in a datum the router converts; anything else is dropped."""
        try:
            return self.datum in DATUMS and -90 <= float(self.lat) <= 90 \
                and -180 <= float(self.lon) <= 180
        except (TypeError, ValueError):
            return False


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # photo | voice | video | document
    file_id: str  # the platform's id, good on its own channel (for a while)
    sha256: str | None = None  # the bytes in the media store, once fetched

    def ref(self, channel: str) -> str:
        """How an outgoing message carries it (bot.delivery.media.photo_ref)."""
        return photo_ref(channel, self.file_id, self.sha256)


@dataclass(slots=True)
class Inbound:
    channel: str
    external_id: str
    chat_id: str
    chat_kind: ChatKind
    sender_id: str
    sender_name: str
    text: str = ""
    location: GeoPoint | None = None
    media: list[Media] = field(default_factory=list)
    media_group_id: str | None = None
    message_id: str | None = None
    reply_to_message_id: str | None = None
    reply_to_bot: bool = False
    mentions_bot: bool = False
    received_at: datetime = field(default_factory=utcnow)


MAX_ID = 2**63 - 1  # the largest row id either database stores; larger ones are forged


@dataclass(frozen=True, slots=True)
class Action:
    """What a button does. Untrusted when it comes back: the core re-checks everything."""

    op: str
    ticket_id: int = 0
    arg: str = ""


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    action: Action | None = None
    url: str | None = None
    request_location: bool = False


@dataclass(slots=True)
class Outbound:
    channel: str
    chat_id: str
    chat_kind: ChatKind
    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    reply_to: str | None = None
    photos: list[str] = field(default_factory=list)
    mention_user_id: str | None = None
    mention_name: str | None = None
    ticket_id: int | None = None
    # remember the sent message id -> ticket, so a reply to it (a worker's note) finds the ticket
    remember: bool = False
    # the outbox row and part, the same on every try (a connector can drop a repeat); not stored
    key: str | None = field(default=None, compare=False)
    # quiet hours: kept back until then, without holding up the chat's other messages
    hold_until: datetime | None = field(default=None, compare=False)

    def payload(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies and was a tenth of intake's CPU time
        return {
            "text": self.text,
            "buttons": [[_button_dict(b) for b in row] for row in self.buttons],
            "reply_to": self.reply_to,
            "photos": list(self.photos),
            "mention_user_id": self.mention_user_id,
            "mention_name": self.mention_name,
            "remember": self.remember,
        }

    @classmethod
    def from_row(
        cls, channel: str, chat_id: str, chat_kind: str, ticket_id: int | None, p: dict[str, Any]
    ) -> Outbound:
        buttons = [
            [
                Button(
                    text=b["text"],
                    action=Action(**b["action"]) if b.get("action") else None,
                    url=b.get("url"),
                    request_location=bool(b.get("request_location")),
                )
                for b in row
            ]
            for row in p.get("buttons") or []
        ]
        return cls(
            channel=channel,
            chat_id=chat_id,
            chat_kind=ChatKind(chat_kind),
            text=p["text"],
            buttons=buttons,
            reply_to=p.get("reply_to"),
            photos=list(p.get("photos") or []),
            mention_user_id=p.get("mention_user_id"),
            mention_name=p.get("mention_name"),
            ticket_id=ticket_id,
            remember=bool(p.get("remember")),
        )


def _button_dict(b: Button) -> dict[str, Any]:
    action = b.action
    return {
        "text": b.text,
        "action": {"op": action.op, "ticket_id": action.ticket_id, "arg": action.arg}
        if action else None,
        "url": b.url,
        "request_location": b.request_location,
    }


@dataclass(frozen=True, slots=True)
class TemplateNotice:
    """What a channel with a messaging window gets instead of free text outside it.

    Template notifications carry fields, not prose: the ticket, its state, when, one line.
    """

    channel: str
    chat_id: str
    number: str
    state: str
    at: datetime
    line: str


class SendError(Exception):
    """Base of what a Sender raises; the outbox decides retry or dead letter from the kind."""


class RetryLater(SendError):
    def __init__(self, after: float, msg: str = "rate limited") -> None:
        super().__init__(msg)
        self.after = after


class TransientSendError(SendError):
    """5xx, timeouts, connection errors: retry with backoff."""


class PermanentSendError(SendError):
    """The platform refused for good (blocked, chat gone, bad request): dead-letter now."""


class Undeliverable(PermanentSendError):
    """The channel lets no message reach this person now (outside its window, no template)."""


class Sender(Protocol):
    channel: str
    capabilities: Capabilities

    async def send(self, msg: Outbound) -> str | None:
        """Deliver one message; return the platform's message id (if any)."""
        ...


class TemplateSender(Sender, Protocol):
    """A sender whose channel has template notifications (capabilities.templates)."""

    async def send_template(self, notice: TemplateNotice) -> str | None: ...
