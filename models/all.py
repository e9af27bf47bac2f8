"""Import every model so `Base.metadata` knows all tables (Alembic, tests)."""

from models.base import Base
from models.callbacks import CallbackHousehold  # noqa: F401  (imports both 回访 tables)
from models.county import Boundary, CalendarDay, Community, CountyMeta, Grid, Place
from models.desk import DeskLink  # noqa: F401
from models.partners import Partner  # noqa: F401  (imports every 协同单位 table)
from models.people import ChatBinding, Identity, Invite, Person, StaffAssignment
from models.robot import RobotReplyUrl, WebhookCursor
from models.tickets import (
    Attachment,
    DayCounter,
    InboundLog,
    Outbox,
    PendingInput,
    SentMessage,
    Ticket,
    TicketEvent,
)
from models.tokens import AccessToken
from models.wecom import WeComGrid  # noqa: F401  (imports every 居民上报 table)

__all__ = [
    "AccessToken",
    "Attachment",
    "Base",
    "Boundary",
    "CalendarDay",
    "ChatBinding",
    "Community",
    "CountyMeta",
    "DayCounter",
    "Grid",
    "Identity",
    "InboundLog",
    "Invite",
    "Outbox",
    "PendingInput",
    "Person",
    "Place",
    "RobotReplyUrl",
    "SentMessage",
    "StaffAssignment",
    "Ticket",
    "TicketEvent",
    "WebhookCursor",
]
