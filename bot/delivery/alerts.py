"""When a message is given up on, the people who can do something about it are told."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Outbound
from bot.notify.texts import t
from bot.people import directory
from models.enums import ChatKind, StaffRole
from models.people import ChatBinding, Identity
from models.tickets import Ticket

log = logging.getLogger(__name__)

SNIPPET = 60


async def dead_letter_alerts(
    s: AsyncSession, *, row_id: int, channel: str, chat_id: str, chat_kind: str,
    ticket_id: int | None, text: str, undeliverable: bool = False,
) -> list[Outbound]:
    """Alerts for the ticket's community coordinators, else the command centre.

    A platform that failed is not trusted with its own alert: those go to staff on the same
    platform only when it refused one message; `undeliverable` (the channel's rules, not
    its health) reaches staff wherever they are.
    """
    community_id = await s.scalar(select(Ticket.community_id).where(Ticket.id == ticket_id)) \
        if ticket_id is not None else None
    same = None if undeliverable else channel
    targets = await _reachable(s, channel, StaffRole.COORDINATOR, community_id, chat_id,
                               same) if community_id is not None else []
    if not targets:
        targets = await _reachable(s, channel, StaffRole.CENTRE, None, chat_id, same)
    if not targets:
        log.error("outbox row %s is dead and nobody on %s can be alerted", row_id, channel)
        return []
    label = await _chat_label(s, channel, chat_id, chat_kind)
    key = "outbox.undeliverable" if undeliverable else "outbox.dead_letter"
    return [
        Outbound(channel=c.channel or channel, chat_id=c.chat_id or "",
                 chat_kind=ChatKind.PRIVATE,
                 text=t(key, c.lang, chat=label, text=text[:SNIPPET]), ticket_id=ticket_id)
        for c in targets
    ]


async def _reachable(
    s: AsyncSession, channel: str, role: StaffRole, community_id: int | None, dead_chat: str,
    only: str | None,
) -> list[directory.Contact]:
    found = await directory.staff(s, role, community_id=community_id, prefer_channel=channel)
    seen: dict[str, directory.Contact] = {}
    for _a, c in found:
        # never the dead chat itself
        if (only is None or c.channel == only) and c.chat_id is not None \
                and (c.channel, c.chat_id) != (channel, dead_chat):
            seen.setdefault(c.chat_id, c)
    return list(seen.values())


async def _chat_label(s: AsyncSession, channel: str, chat_id: str, chat_kind: str) -> str:
    if chat_kind == ChatKind.GROUP:
        q = select(ChatBinding.title).where(ChatBinding.channel == channel,
                                            ChatBinding.chat_id == chat_id)
    else:
        q = (select(Identity.display_name)
             .where(Identity.channel == channel, Identity.private_chat_id == chat_id).limit(1))
    name = await s.scalar(q)
    return f"{name} ({chat_id})" if name else chat_id
