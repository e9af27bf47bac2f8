"""WeCom 居民上报: the grids we pushed, the reports we pulled, and where the pull stands.

`resident_contacts` holds what a resident gave WeCom to be called back on (name, mobile).
Only the command centre's views may read it: no card, group message or log does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class WeComGrid(Base):
    """One node we created in WeCom's grid structure: a community or a grid of ours."""

    __tablename__ = "wecom_grids"
    __table_args__ = (UniqueConstraint("kind", "our_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # community | grid
    our_id: Mapped[int] = mapped_column(Integer)
    wecom_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    parent_wecom_id: Mapped[str] = mapped_column(String(64), default="")
    admins: Mapped[list[str]] = mapped_column(JSON, default=list)
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeComOrder(Base):
    """A WeCom report and the one ticket it became."""

    __tablename__ = "wecom_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    wecom_grid_id: Mapped[str] = mapped_column(String(64), default="")
    created_time: Mapped[int] = mapped_column(Integer, default=0)  # WeCom's, unix seconds
    steps: Mapped[int] = mapped_column(Integer, default=0)  # process_list entries applied
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeComOrderStep(Base):
    """One process_list entry applied to its ticket (the unique key makes it once)."""

    __tablename__ = "wecom_order_steps"
    __table_args__ = (UniqueConstraint("order_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    process_type: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[int] = mapped_column(Integer, default=0)
    solved_time: Mapped[int] = mapped_column(Integer, default=0)


class ResidentContact(Base):
    """How the command centre calls a resident back. Read by the centre's views only."""

    __tablename__ = "resident_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    mobile: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(16), default="wecom_resident")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeComSyncState(Base):
    """Where the report pull stands; written in the same transaction as the page it follows."""

    __tablename__ = "wecom_sync_state"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    done_until: Mapped[int] = mapped_column(Integer, default=0)  # last complete run's start
    since: Mapped[int] = mapped_column(Integer, default=0)  # this run's begin_modify_time
    run_started: Mapped[int | None] = mapped_column(Integer)  # None: no run under way
    page_cursor: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
