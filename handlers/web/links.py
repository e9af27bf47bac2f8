"""One-time sign-in links: issued to staff in chat (网页 / /desk) or by the CLI, used once.

Only a hash of the token is stored, so the table leaks no way in. Issuing is limited per
person from the table itself (every process sees the same count).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx
from bot.notify.texts import t
from bot.people import directory
from handlers.web import texts as _texts  # noqa: F401  (registers the desk's words)
from handlers.web.staff import DESK_ROLES
from models.desk import DeskLink
from models.enums import ChatKind
from models.people import Person, StaffAssignment

TTL = timedelta(minutes=10)
PER_PERSON = 5  # links within TTL; more is someone hammering the bot, or a leaked account


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TooMany(Exception):
    """Too many links asked for this person lately."""


@dataclass(frozen=True, slots=True)
class Links:
    base_url: str  # as staff reach the service, without a trailing slash
    clock: Callable[[], datetime]

    def url(self, token: str) -> str:
        return f"{self.base_url}/desk/login?t={token}"

    async def issue(self, s: AsyncSession, person_id: int, identity_id: int | None) -> str:
        """A new link's URL, in the caller's transaction; TooMany past the per-person limit."""
        now = self.clock()
        recent = await s.scalar(select(func.count()).select_from(DeskLink).where(
            DeskLink.person_id == person_id, DeskLink.created_at > now - TTL))
        if (recent or 0) >= PER_PERSON:
            raise TooMany
        token = secrets.token_urlsafe(32)
        s.add(DeskLink(token_hash=token_hash(token), person_id=person_id,
                       identity_id=identity_id, created_at=now, expires_at=now + TTL))
        return self.url(token)

    async def for_chat(self, s: AsyncSession, ctx: Ctx) -> str:
        """What the bot answers to 网页 / /desk: a link, privately, to staff who may use it."""
        if ctx.chat_kind != ChatKind.PRIVATE:
            return t("desk.link_private", ctx.lang)
        ident = await directory.identity(s, ctx.channel, ctx.user_id)
        roles = await directory.standing_roles(s, ctx.channel, ctx.user_id)
        if ident is None or ident.person_id is None or not any(
                r.role in DESK_ROLES for r in roles):
            return t("desk.link_staff_only", ctx.lang)
        try:
            return t("desk.link", ctx.lang, url=await self.issue(s, ident.person_id, ident.id))
        except TooMany:
            return t("desk.link_too_many", ctx.lang)


async def redeem(s: AsyncSession, token: str, now: datetime) -> DeskLink | None:
    """The link, marked used, if it is unused and unexpired; None otherwise.

    The conditional UPDATE is the check: of two tabs opening one link, one wins.
    """
    if not token or len(token) > 128:
        return None
    h = token_hash(token)
    done = await s.execute(update(DeskLink).where(
        DeskLink.token_hash == h, DeskLink.used_at.is_(None), DeskLink.expires_at > now,
    ).values(used_at=now))
    if not done.rowcount:  # type: ignore[attr-defined]
        return None
    return await s.scalar(select(DeskLink).where(DeskLink.token_hash == h))


async def person_named(s: AsyncSession, name_or_id: str) -> Person | None:
    """The CLI's --person: an id, or a name held by exactly one active desk user."""
    if name_or_id.isdigit():
        return await s.get(Person, int(name_or_id))
    found = (await s.scalars(select(Person).where(
        Person.name == name_or_id, Person.active.is_(True)).join(
        StaffAssignment, StaffAssignment.person_id == Person.id).where(
        StaffAssignment.active.is_(True),
        StaffAssignment.role.in_([r.value for r in DESK_ROLES])).distinct())).all()
    return found[0] if len(found) == 1 else None
