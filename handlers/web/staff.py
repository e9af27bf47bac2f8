"""Who is at the desk, and what they may see: decided from the server's records per request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx
from bot.people.directory import Oversight
from models.enums import ChatKind, StaffRole
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket

DESK_ROLES = (StaffRole.LEADER, StaffRole.COORDINATOR, StaffRole.CENTRE)


@dataclass(frozen=True, slots=True)
class Staff:
    person_id: int
    name: str
    oversight: Oversight  # the core's rule of who oversees which tickets
    identity: tuple[str, str, str] | None  # channel, user id, private chat: the desk acts as it
    lang: str = ""

    @property
    def centre(self) -> bool:
        return self.oversight.centre

    @property
    def community_ids(self) -> frozenset[int]:
        return self.oversight.community_ids

    @property
    def grid_ids(self) -> frozenset[int]:
        return self.oversight.grid_ids

    def sees(self) -> ColumnElement[bool]:
        return self.oversight.tickets()

    def may_see(self, ticket: Ticket) -> bool:
        return self.oversight.covers(ticket)

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
        person_id=person.id, name=person.name, oversight=Oversight.of(posts),
        identity=(ident.channel, ident.user_id, ident.private_chat_id or ident.user_id)
        if ident else None,
        lang=(ident.language if ident else None) or "")
