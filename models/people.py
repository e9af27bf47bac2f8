from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Person(Base):
    """A staff member from grids.yaml (worker / leader) or added through an invite."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffAssignment(Base):
    """A standing role: worker/leader of a grid, coordinator of a community, or centre."""

    __tablename__ = "staff_assignments"
    __table_args__ = (UniqueConstraint("person_id", "role", "grid_id", "community_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "import" rows follow the county files; "invite" rows are never removed by an import
    source: Mapped[str] = mapped_column(String(8), default="invite")


class Identity(Base):
    """A platform account (Telegram user, console user, ...), optionally bound to a person."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    private_chat_id: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatBinding(Base):
    """A group chat bound to a grid (or a whole community) by a coordinator's /bind."""

    __tablename__ = "chat_bindings"
    __table_args__ = (UniqueConstraint("channel", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128), default="")
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    bound_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
