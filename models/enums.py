from __future__ import annotations

from enum import StrEnum


class TicketState(StrEnum):
    REPORTED = "reported"
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    RETURNED = "returned"
    REOPENED = "reopened"
    MERGED = "merged"  # a co-report (附议): its reporter follows the ticket it was merged into


OPEN_STATES = frozenset(
    {
        TicketState.REPORTED,
        TicketState.ASSIGNED,
        TicketState.ACKNOWLEDGED,
        TicketState.IN_PROGRESS,
        TicketState.RETURNED,
        TicketState.REOPENED,
    }
)


# with a worker: what the card's buttons act on and what deadlines escalate
ACTIVE = frozenset(
    {TicketState.ASSIGNED, TicketState.ACKNOWLEDGED, TicketState.IN_PROGRESS, TicketState.REOPENED}
)


class Role(StrEnum):
    """Who an actor is *relative to one ticket*; decided on the server."""

    RESIDENT = "resident"  # the ticket's reporter
    WORKER = "worker"  # the ticket's assignee
    LEADER = "leader"  # leader of the ticket's grid
    COORDINATOR = "coordinator"  # coordinator of the ticket's community
    CENTRE = "centre"  # county command centre
    SYSTEM = "system"  # router, sweeper
    PARTNER = "partner"  # a contact of the partner unit the ticket was handed to (转办)


class StaffRole(StrEnum):
    """A standing role a person holds (what an invite grants)."""

    WORKER = "worker"
    LEADER = "leader"
    COORDINATOR = "coordinator"
    CENTRE = "centre"


class Channel(StrEnum):
    TELEGRAM = "telegram"
    CONSOLE = "console"
    WECHAT = "wechat"
    WECOM = "wecom"
    WECOM_ROBOT = "wecom_robot"  # the WeCom smart robot (智能机器人): staff groups
    WECOM_RESIDENT = "wecom_resident"  # 居民上报 reports pulled from WeCom: no chat back
    BRIDGE = "bridge"
    OFFLINE = "offline"  # 代报: filed by staff for a resident face to face; no chat back


# channels that can only answer a message just received (the smart robot's response_url):
# never where the service starts a conversation with someone who has another account
REPLY_ONLY = frozenset({Channel.WECOM_ROBOT.value})


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


class RouteStatus(StrEnum):
    ROUTED = "routed"
    AMBIGUOUS = "ambiguous"
    UNKNOWN = "unknown"


class Satisfaction(StrEnum):
    SATISFIED = "satisfied"
    FAIRLY = "fairly"
    UNSATISFIED = "unsatisfied"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    COALESCED = "coalesced"
    HELD = "held"  # a staff notice waiting out the quiet hours; released by the sweeper


class Category(StrEnum):
    SANITATION = "环境卫生"
    MUNICIPAL = "市政设施"
    SAFETY = "安全隐患"
    DISPUTE = "矛盾纠纷"
    NOISE = "噪音扰民"
    PROPERTY = "物业服务"
    OTHER = "其他"
