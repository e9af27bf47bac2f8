from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # co-reports (附议): the open tickets of a grid at a place, or near a point
        Index("ix_tickets_grid_place", "grid_id", "place_text"),
        Index("ix_tickets_grid_lat", "grid_id", "lat"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    place_text: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    datum: Mapped[str | None] = mapped_column(String(8))
    route_status: Mapped[str] = mapped_column(String(16))
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    unrouted: Mapped[bool] = mapped_column(default=False)
    # a co-report (附议) points at the ticket it follows; state merged while it does
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    # 转办: the partner unit (models.partners) doing the work; the assignee stays responsible
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)

    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    chat_kind: Mapped[str] = mapped_column(String(8))
    reporter_user_id: Mapped[str] = mapped_column(String(64), index=True)
    reporter_name: Mapped[str] = mapped_column(String(128), default="")
    source_message_id: Mapped[str | None] = mapped_column(String(64))

    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # urgent | normal
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    route_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirm_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the earliest deadline still to act on; the sweeper scans this index only
    escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


@dataclass(slots=True)
class NewTicket:
    """A ticket's values before its insert, with the same attribute names as `Ticket`.

    Bulk intake builds these, not ORM instances: attribute instrumentation cost more per
    report than routing, texts and the insert together.
    """

    number: str
    category: str
    text: str
    route_status: str
    channel: str
    chat_id: str
    chat_kind: str
    reporter_user_id: str
    reporter_name: str = ""
    source_message_id: str | None = None
    place_text: str = ""
    lat: float | None = None
    lon: float | None = None
    datum: str | None = None
    candidates: list[str] = field(default_factory=list)
    grid_id: int | None = None
    community_id: int | None = None
    assignee_id: int | None = None
    unrouted: bool = False
    merged_into_id: int | None = None
    partner_id: int | None = None
    state: str = ""
    escalation_level: int = 0
    priority: str = "normal"
    satisfaction: str | None = None
    resolution_note: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    assigned_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    route_due_at: datetime | None = None
    ack_due_at: datetime | None = None
    resolve_due_at: datetime | None = None
    confirm_due_at: datetime | None = None
    last_escalated_at: datetime | None = None
    escalation_at: datetime | None = None
    id: int = 0  # known after the insert

    def values(self) -> dict[str, Any]:
        """Column values for `insert(Ticket)`."""
        return {k: getattr(self, k) for k in NEW_TICKET_COLUMNS}


NEW_TICKET_COLUMNS = tuple(c.key for c in Ticket.__table__.columns if c.key != "id")


class TicketEvent(Base):
    """The audit trail: one row per state change, note or reassignment."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # transition | note | category | escalate
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    actor_name: Mapped[str] = mapped_column(String(128), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_events.id"))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # photo | voice | video | document
    file_id: Mapped[str] = mapped_column(String(256))
    media_sha: Mapped[str | None] = mapped_column(String(64))  # in the media store
    # report | progress | resolution
    role: Mapped[str] = mapped_column(String(16), default="report")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundLog(Base):
    """Every inbound platform message we acted on, unique per (channel, external id)."""

    __tablename__ = "inbound_log"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_inbound_recent_media", "channel", "chat_id", "sender_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(96))
    chat_id: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(String(64))
    media_group_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # media sent before a report, kept so the report can claim it: [{"kind","file_id"}]
    media: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    has_media: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "channel", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    chat_kind: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    coalesced_into: Mapped[int | None] = mapped_column(Integer)
    external_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SentMessage(Base):
    """Which platform message carries which ticket card, so a reply to it finds the ticket."""

    __tablename__ = "sent_messages"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OfferedChoice(Base):
    """Numbered choices shown where a channel has no buttons: what "1", "2" … do there.

    One row per chat and addressee ("" = anyone in the chat), the latest offer wins.
    """

    __tablename__ = "offered_choices"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64), default="")
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PendingInput(Base):
    """A question the bot asked one identity and waits on (resolution note, return reason)."""

    __tablename__ = "pending_inputs"
    __table_args__ = (UniqueConstraint("channel", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    action: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DayCounter(Base):
    """Per-day ticket sequence for numbers like FS-20261128-0007."""

    __tablename__ = "day_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
