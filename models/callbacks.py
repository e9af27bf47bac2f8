"""Random call-backs (回访): the households the centre may phone, and each planned call.

A household is one row whoever it came from: the county's register (households.csv) or a
resident whose ticket was closed. `key` says who it is across weeks (a phone when known), so
the cooldown holds whichever list a household was drawn from. The phone lives only here and
is shown only on the centre's call sheet.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

REACHED = "reached"
UNREACHED = "unreached"  # drawn again the next week


class CallbackHousehold(Base):
    __tablename__ = "callback_households"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)  # tel:… | chat:… | addr:…
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    address: Mapped[str] = mapped_column(String(128), default="")
    name: Mapped[str] = mapped_column(String(64), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(8), default="register")  # register | ticket
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackCall(Base):
    """One household drawn for one ISO week, and what the call found out."""

    __tablename__ = "callback_calls"
    __table_args__ = (
        UniqueConstraint("week", "household_id"),
        Index("ix_callback_calls_recorded", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)  # 回访编号: 2026W49-001
    week: Mapped[str] = mapped_column(String(8))  # 2026-W49
    household_id: Mapped[int] = mapped_column(ForeignKey("callback_households.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(12), default="")  # "" (not yet) | REACHED | …
    community_rating: Mapped[str] = mapped_column(String(12), default="")  # Satisfaction or ""
    worker_rating: Mapped[str] = mapped_column(String(12), default="")
    committee_rating: Mapped[str] = mapped_column(String(12), default="")  # "": no committee
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(64), default="")  # the caller's name
