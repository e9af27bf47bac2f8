"""What the WeCom robots need to remember across processes.

The smart robot (智能机器人) can answer a chat only through the response_url of a message from
it: each URL once, within an hour. Every URL is kept here when its message arrives, so the
outbox of any process can spend it.

The group robot webhook (消息推送) posts alerts and a daily digest; its cursor (how far through
ticket events and the outbox it has posted, the day of the last digest, the posts of the last
minute) lives in one row that a process leases before it posts, so nothing goes out twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class RobotReplyUrl(Base):
    __tablename__ = "robot_reply_urls"
    __table_args__ = (Index("ix_robot_reply_urls_chat", "chat_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    msgid: Mapped[str] = mapped_column(String(96), unique=True)  # the message it answers
    url: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookCursor(Base):
    __tablename__ = "webhook_cursors"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, default=0)  # ticket_events posted up to
    outbox_id: Mapped[int] = mapped_column(Integer, default=0)  # outbox rows looked at up to
    digest_day: Mapped[str] = mapped_column(String(10), default="")  # local date, ISO
    recent: Mapped[list[float]] = mapped_column(JSON, default=list)  # post times, last minute
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holder: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
