"""Platform access tokens shared by every process of the service.

WeChat keeps one live access token per app: each fetch replaces the last one (the old one
works for about five more minutes), and fetches are counted per day. So processes do not each
keep their own: the token lives here, and one process at a time refreshes it, holding
`refreshing_until` as a short lease while it asks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class AccessToken(Base):
    __tablename__ = "access_tokens"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)  # "wechat:<appid>"
    # WeChat asks for at least 512 characters of room
    token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshing_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
