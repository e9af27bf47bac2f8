"""Who is who: staff of a grid or community, their chats, and an actor's roles on a ticket."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, Select, bindparam, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from bot.tickets.lifecycle import Actor
from models.enums import REPLY_ONLY, Role, StaffRole
from models.partners import Partner, PartnerContact
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket


@dataclass(frozen=True, slots=True)
class Contact:
    person_id: int
    name: str
    channel: str | None
    chat_id: str | None
    lang: str = ""


def _pick(best: Contact | None, pid: int, name: str, channel: str | None,
          chat_id: str | None, lang: str | None, prefer: str | None) -> Contact:
    """A person may have several accounts: one that can be reached, on `prefer` if possible."""
    reachable = chat_id is not None
    if best is not None and best.chat_id is not None and channel in REPLY_ONLY:
        return best
    if best is not None and best.channel in REPLY_ONLY and reachable:
        return Contact(pid, name, channel, chat_id, lang or "")
    if best is None or (reachable and (best.chat_id is None or channel == prefer)):
        return Contact(pid, name, channel if reachable else None, chat_id, lang or "")
    return best


@dataclass(frozen=True, slots=True)
class Post:
    """One staff assignment: where the person serves."""

    id: int
    person_id: int
    grid_id: int | None
    community_id: int | None


def _with_accounts(q: Select) -> Select:  # bare: its type arity differs in SQLAlchemy 2.0 and 2.1
    return (q.add_columns(Person.name, Identity.channel, Identity.private_chat_id,
                          Identity.language)
            .outerjoin(Identity, Identity.person_id == Person.id)
            .where(Person.active.is_(True)))


def _staff_base(role: Any) -> Select[Any]:
    a = StaffAssignment
    return _with_accounts(select(a.id, a.person_id, a.grid_id, a.community_id)
                          .join(Person, Person.id == a.person_id)
                          .where(a.role == role, a.active.is_(True)))


def _staff_query(role: StaffRole, grid_ids: Iterable[int], community_id: int | None,
                 community_ids: Iterable[int]) -> Select[Any]:
    a = StaffAssignment
    q = _staff_base(role.value)
    gids = list(grid_ids)
    if gids:
        q = q.where(a.grid_id.in_(gids))
    if community_id is not None:
        q = q.where(a.community_id == community_id)
    cids = list(community_ids)
    if cids:
        q = q.where(a.community_id.in_(cids))
    return q.order_by(a.id, Identity.id)


# built once for intake's batches (see bot.intake.lookups)
_STAFF_IN = {
    by: _staff_base(bindparam("role")).where(col.in_(bindparam("ids", expanding=True)))
    .order_by(StaffAssignment.id, Identity.id)
    for by, col in (("grid", StaffAssignment.grid_id),
                    ("community", StaffAssignment.community_id))
}
_STAFF_ALL = _staff_base(bindparam("role")).order_by(StaffAssignment.id, Identity.id)


def _reachable(rows: Iterable[Any], prefer: str | None) -> list[tuple[Post, Contact]]:
    found: dict[int, tuple[Post, Contact | None]] = {}
    for aid, pid, grid_id, community_id, name, channel, chat_id, lang in rows:
        post, prev = found.get(aid, (Post(aid, pid, grid_id, community_id), None))
        found[aid] = (post, _pick(prev, pid, name, channel, chat_id, lang, prefer))
    return [(p, c) for p, c in found.values() if c is not None]


async def staff(
    session: AsyncSession,
    role: StaffRole,
    *,
    grid_ids: Iterable[int] = (),
    community_id: int | None = None,
    community_ids: Iterable[int] = (),
    prefer_channel: str | None = None,
) -> list[tuple[Post, Contact]]:
    """Active staff in `role` (filtered by grid or community) with how to reach each."""
    rows = await session.execute(_staff_query(role, grid_ids, community_id, community_ids))
    return _reachable(rows, prefer_channel)


def staff_on(
    conn: Connection, role: StaffRole, by: Literal["grid", "community", "all"],
    ids: Iterable[int],
) -> list[tuple[Post, Contact]]:
    """`staff` inside a synchronous batch (see models.db.TxRunner); "all": the whole county."""
    if by == "all":
        return _reachable(conn.execute(_STAFF_ALL, {"role": role.value}), None)
    return _reachable(conn.execute(_STAFF_IN[by], {"role": role.value, "ids": list(ids)}), None)


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
    lang = (ident.language if ident else None) or ""
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
            if ticket is not None and ticket.partner_id is not None \
                    and await contact_of_partner(session, person_id, ticket.partner_id):
                roles.add(Role.PARTNER)
    return Actor(
        roles=frozenset(roles), person_id=person_id, name=name, user_id=user_id,
        channel=channel, lang=lang,
    )


async def contact_of_partner(session: AsyncSession, person_id: int, partner_id: int) -> bool:
    """Does this person act for that partner unit (转办), both still active?"""
    found = await session.scalar(
        select(PartnerContact.id).join(Partner, Partner.id == PartnerContact.partner_id)
        .where(PartnerContact.person_id == person_id, PartnerContact.partner_id == partner_id,
               PartnerContact.active.is_(True), Partner.active.is_(True)).limit(1))
    return found is not None


async def reported_by_staff(session: AsyncSession, ticket: Ticket) -> bool:
    """Was this ticket reported by someone who serves as staff (not as a resident)?"""
    found = await session.scalar(
        select(StaffAssignment.id)
        .join(Identity, Identity.person_id == StaffAssignment.person_id)
        .where(Identity.channel == ticket.channel,
               Identity.user_id == ticket.reporter_user_id,
               StaffAssignment.active.is_(True))
        .limit(1))
    return found is not None


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


@dataclass(frozen=True, slots=True)
class Oversight:
    """Which tickets a person's standing roles let them oversee: a coordinator their
    community's, a grid leader their grid's, the command centre every one. The one rule the
    chat lists (超时, 待分派) and the web desk apply."""

    centre: bool
    community_ids: frozenset[int]  # as coordinator
    grid_ids: frozenset[int]  # as grid leader

    @classmethod
    def of(cls, posts: Iterable[StaffAssignment]) -> Oversight:
        posts = list(posts)
        return cls(
            centre=any(p.role == StaffRole.CENTRE for p in posts),
            community_ids=frozenset(p.community_id for p in posts
                                    if p.role == StaffRole.COORDINATOR and p.community_id),
            grid_ids=frozenset(p.grid_id for p in posts
                               if p.role == StaffRole.LEADER and p.grid_id))

    def any(self) -> bool:
        return self.centre or bool(self.community_ids or self.grid_ids)

    def tickets(self) -> ColumnElement[bool]:
        """The SQL condition for the tickets overseen."""
        if self.centre:
            return true()
        if not self.any():
            return false()
        return or_(Ticket.community_id.in_(self.community_ids),
                   Ticket.grid_id.in_(self.grid_ids))

    def covers(self, ticket: Ticket) -> bool:
        return self.centre or ticket.community_id in self.community_ids \
            or ticket.grid_id in self.grid_ids


async def oversight(session: AsyncSession, channel: str, user_id: str) -> Oversight:
    return Oversight.of(await standing_roles(session, channel, user_id))
