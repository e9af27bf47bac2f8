"""What every core operation needs, built once by run_bot.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.index import CountyHolder
from bot.delivery.capabilities import FULL, Capabilities
from bot.delivery.media import MediaStore
from bot.delivery.outbox import enqueue
from bot.delivery.ratelimit import Strikes
from bot.messages import Outbound
from bot.notify.compose import FollowLink
from bot.tickets.sla import SlaConfig
from models.enums import ChatKind


@dataclass(slots=True)
class Deps:
    sm: async_sessionmaker[AsyncSession]
    county: CountyHolder
    sla: SlaConfig
    clock: Callable[[], datetime]
    follow_link: FollowLink
    prefix: str = "FS"
    invite_ttl_days: int = 7
    wake_outbox: Callable[[], None] = lambda: None
    bad_codes: Strikes = field(default_factory=Strikes)  # wrong invite codes, per person/chat
    media: MediaStore | None = None  # where arriving photos, voice and video are kept
    # sessions that only read: on SQLite they take no write lock (models.db.make_engine)
    read: async_sessionmaker[AsyncSession] | None = None
    # what each channel can do (its sender's declaration), for words that depend on it
    capabilities: Mapping[str, Capabilities] = field(default_factory=dict)

    def reader(self) -> async_sessionmaker[AsyncSession]:
        return self.read or self.sm

    def quoting(self, channel: str) -> bool:
        """Can a person there answer a given message (a worker's note by quoting the card)?"""
        return self.capabilities.get(channel, FULL).quoting


def answered(session: AsyncSession, channel: str, chat_id: str) -> None:
    """Note that this transaction told the person in this chat what their step did: its short
    answer need not follow (Ctx.replied)."""
    session.info.setdefault("replied", set()).add((channel, chat_id))


@dataclass(frozen=True, slots=True)
class Ctx:
    """Who acts and where; comes from the platform, identity only (roles are looked up)."""

    channel: str
    user_id: str
    user_name: str
    chat_id: str
    chat_kind: ChatKind
    message_id: str | None = None
    lang: str = ""  # "" = the service's language (texts.use_language)

    def replied(self, session: AsyncSession) -> bool:
        """Has this transaction already queued something for this chat?"""
        return (self.channel, self.chat_id) in session.info.get("replied", ())

    def reply(self, session: AsyncSession, text: str, **kw: object) -> None:
        """Queue an answer to this chat in the caller's transaction."""
        answered(session, self.channel, self.chat_id)
        enqueue(session, Outbound(channel=self.channel, chat_id=self.chat_id,
                                  chat_kind=self.chat_kind, text=text, **kw))  # type: ignore[arg-type]
