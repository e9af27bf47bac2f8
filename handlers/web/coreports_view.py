"""附议 on a ticket's page: the co-reports that follow it, each with a 拆分 button; the same
section comes back, updated, after a split."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets import actions
from handlers.web.context import DeskState
from handlers.web.staff import Staff
from models.enums import TicketState as S
from models.tickets import Ticket


@dataclass(frozen=True, slots=True)
class CoReport:
    id: int
    number: str
    name: str  # the reporter's name only: their phone is the centre's alone
    text: str
    at: str
    nonce: str


async def followers(s: AsyncSession, lead_id: int) -> list[Ticket]:
    return list((await s.scalars(select(Ticket).where(
        Ticket.merged_into_id == lead_id, Ticket.state == S.MERGED.value)
        .order_by(Ticket.id))).all())


def may_split(staff: Staff, lead: Ticket) -> bool:
    """Coordinators of the ticket's community and the centre (the core checks it again)."""
    return staff.identity is not None and "split" in actions.OPS \
        and (staff.centre or lead.community_id in staff.community_ids)


def section(state: DeskState, staff: Staff, lead: Ticket, found: list[Ticket],
            answer: str = "", done: bool | None = None) -> dict[str, Any]:
    """What _coreports.html shows."""
    items = [CoReport(tk.id, tk.number, tk.reporter_name or "—", tk.text,
                      tk.created_at.astimezone(state.tz).strftime("%Y-%m-%d %H:%M"),
                      secrets.token_urlsafe(12)) for tk in found]
    return {"lead": lead, "coreports": items, "may_split": may_split(staff, lead),
            "answer": answer, "done": done}
