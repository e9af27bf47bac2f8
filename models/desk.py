"""One-time sign-in links for the web desk: only a hash of each token is kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class DeskLink(Base):
    __tablename__ = "desk_links"
    # links a person asked for lately: the per-person limit counts them
    __table_args__ = (Index("ix_desk_links_person_created", "person_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    # the account that asked: the desk acts as it (None: a link printed by the CLI for a
    # person with no chat account, who can read but not act)
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
