"""Who is at the desk, and what they may see: decided from the server's records per request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx
from models.enums import ChatKind, StaffRole
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket

DESK_ROLES = (StaffRole.LEADER, StaffRole.COORDINATOR, StaffRole.CENTRE)


@dataclass(frozen=True, slots=True)
class Staff:
    person_id: int
    name: str
    centre: bool
    community_ids: frozenset[int]  # as coordinator
    grid_ids: frozenset[int]  # as grid leader
    identity: tuple[str, str, str] | None  # channel, user id, private chat: the desk acts as it
    lang: str = ""

    def sees(self) -> ColumnElement[bool]:
        """The tickets this person's roles cover (coordinator: community; leader: grid)."""
        if self.centre:
            return true()
        if not self.community_ids and not self.grid_ids:
            return false()
        return or_(Ticket.community_id.in_(self.community_ids),
                   Ticket.grid_id.in_(self.grid_ids))

    def may_see(self, ticket: Ticket) -> bool:
        return self.centre or ticket.community_id in self.community_ids \
            or ticket.grid_id in self.grid_ids

    def ctx(self) -> Ctx | None:
        """The core's view of a desk action: the person's own chat account, in private."""
        if self.identity is None:
            return None
        channel, user_id, chat_id = self.identity
        return Ctx(channel, user_id, self.name, chat_id, ChatKind.PRIVATE, None, self.lang)


async def load(s: AsyncSession, person_id: int, identity_id: int | None) -> Staff | None:
    """The signed-in person as they are now: None once they are inactive or hold no desk role."""
    person = await s.get(Person, person_id)
    if person is None or not person.active:
        return None
    posts = (await s.scalars(select(StaffAssignment).where(
        StaffAssignment.person_id == person_id, StaffAssignment.active.is_(True),
        StaffAssignment.role.in_([r.value for r in DESK_ROLES])))).all()
    if not posts:
        return None
    ident = await s.get(Identity, identity_id) if identity_id else None
    if ident is not None and ident.person_id != person_id:
        ident = None  # the account was rebound to someone else since the link
    return Staff(
        person_id=person.id, name=person.name,
        centre=any(p.role == StaffRole.CENTRE for p in posts),
        community_ids=frozenset(p.community_id for p in posts
                                if p.role == StaffRole.COORDINATOR and p.community_id),
        grid_ids=frozenset(p.grid_id for p in posts if p.role == StaffRole.LEADER and p.grid_id),
        identity=(ident.channel, ident.user_id, ident.private_chat_id or ident.user_id)
        if ident else None,
        lang=(ident.language if ident else None) or "")
