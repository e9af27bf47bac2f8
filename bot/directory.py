"""Who is who: staff of a grid or community, their chats, and an actor's roles on a ticket."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.lifecycle import Actor
from models.enums import Role, StaffRole
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket


@dataclass(frozen=True, slots=True)
class Contact:
    person_id: int
    name: str
    channel: str | None
    chat_id: str | None
    lang: str = "zh"


def _pick(best: Contact | None, pid: int, name: str, channel: str | None,
          chat_id: str | None, lang: str | None, prefer: str | None) -> Contact:
    """A person may have several accounts: one that can be reached, on `prefer` if possible."""
    reachable = chat_id is not None
    if best is None or (reachable and (best.chat_id is None or channel == prefer)):
        return Contact(pid, name, channel if reachable else None, chat_id, lang or "zh")
    return best


def _with_accounts(q: Select[Any]) -> Select[Any]:
    return (q.add_columns(Person.name, Identity.channel, Identity.private_chat_id,
                          Identity.language)
            .outerjoin(Identity, Identity.person_id == Person.id)
            .where(Person.active.is_(True)))


async def staff(
    session: AsyncSession,
    role: StaffRole,
    *,
    grid_ids: Iterable[int] = (),
    community_id: int | None = None,
    community_ids: Iterable[int] = (),
    prefer_channel: str | None = None,
) -> list[tuple[StaffAssignment, Contact]]:
    """Active staff in `role` (filtered by grid or community) with how to reach each."""
    q = _with_accounts(select(StaffAssignment)
                       .join(Person, Person.id == StaffAssignment.person_id)
                       .where(StaffAssignment.role == role.value,
                              StaffAssignment.active.is_(True)))
    gids = list(grid_ids)
    if gids:
        q = q.where(StaffAssignment.grid_id.in_(gids))
    if community_id is not None:
        q = q.where(StaffAssignment.community_id == community_id)
    cids = list(community_ids)
    if cids:
        q = q.where(StaffAssignment.community_id.in_(cids))
    found: dict[int, tuple[StaffAssignment, Contact | None]] = {}
    for a, name, channel, chat_id, lang in await session.execute(
            q.order_by(StaffAssignment.id, Identity.id)):
        prev = found.get(a.id, (a, None))[1]
        found[a.id] = (a, _pick(prev, a.person_id, name, channel, chat_id, lang, prefer_channel))
    return [(a, c) for a, c in found.values() if c is not None]


async def contact(session: AsyncSession, person_id: int, prefer: str | None) -> Contact | None:
    best: Contact | None = None
    q = _with_accounts(select(Person.id).where(Person.id == person_id))
    for pid, name, channel, chat_id, lang in await session.execute(q.order_by(Identity.id)):
        best = _pick(best, pid, name, channel, chat_id, lang, prefer)
    return best


async def identity(session: AsyncSession, channel: str, user_id: str) -> Identity | None:
    return await session.scalar(
        select(Identity).where(Identity.channel == channel, Identity.user_id == user_id)
    )


async def actor_for(
    session: AsyncSession, channel: str, user_id: str, name: str, ticket: Ticket | None
) -> Actor:
    """Roles come from the server's records only; nothing the client sent is trusted."""
    roles: set[Role] = set()
    ident = await identity(session, channel, user_id)
    person_id = ident.person_id if ident else None
    lang = (ident.language if ident else None) or "zh"
    if ticket is not None and ticket.channel == channel and ticket.reporter_user_id == user_id:
        roles.add(Role.RESIDENT)
    if person_id is not None:
        person = await session.get(Person, person_id)
        if person is not None and person.active:
            name = person.name
            assignments = (
                await session.scalars(
                    select(StaffAssignment).where(
                        StaffAssignment.person_id == person_id, StaffAssignment.active.is_(True)
                    )
                )
            ).all()
            for a in assignments:
                if a.role == StaffRole.CENTRE:
                    roles.add(Role.CENTRE)
                if ticket is None:
                    continue
                if a.role == StaffRole.LEADER and a.grid_id == ticket.grid_id:
                    roles.add(Role.LEADER)
                if a.role == StaffRole.COORDINATOR and a.community_id == ticket.community_id:
                    roles.add(Role.COORDINATOR)
            if ticket is not None and ticket.assignee_id == person_id:
                roles.add(Role.WORKER)
    return Actor(
        roles=frozenset(roles), person_id=person_id, name=name, user_id=user_id,
        channel=channel, lang=lang,
    )


async def standing_roles(
    session: AsyncSession, channel: str, user_id: str
) -> list[StaffAssignment]:
    ident = await identity(session, channel, user_id)
    if ident is None or ident.person_id is None:
        return []
    return list(
        (
            await session.scalars(
                select(StaffAssignment).where(
                    StaffAssignment.person_id == ident.person_id,
                    StaffAssignment.active.is_(True),
                )
            )
        ).all()
    )
