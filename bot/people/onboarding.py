"""Invites (one-time codes that grant a staff role) and binding group chats to a place."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx, Deps
from bot.notify.texts import scoped, t
from bot.people import directory
from bot.people.partners import PARTNER_ROLE, redeem_partner
from bot.sqlutil import insert_for
from models.county import Community, Grid
from models.enums import StaffRole
from models.people import ChatBinding, Identity, Invite, Person, StaffAssignment

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone


# what each staff role serves: a grid, a community, or the whole county
INVITE_SCOPE: dict[StaffRole, Literal["grid", "community"] | None] = {
    StaffRole.WORKER: "grid", StaffRole.LEADER: "grid",
    StaffRole.COORDINATOR: "community", StaffRole.CENTRE: None,
}


class InviteError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NewInvite:
    code: str
    role: StaffRole
    scope: str
    expires_at: datetime


async def create_invite(
    s: AsyncSession, role: StaffRole, *, grid: str | None, community: str | None,
    now: datetime, ttl_days: int,
) -> NewInvite:
    grid_id = community_id = None
    if INVITE_SCOPE[role] == "grid":
        g = await s.scalar(select(Grid).where(Grid.code == (grid or ""), Grid.active.is_(True)))
        if g is None:
            raise InviteError(f"no active grid with code {grid!r}")
        grid_id = g.id
    elif INVITE_SCOPE[role] == "community":
        c = await s.scalar(select(Community).where(Community.code == (community or ""),
                                                   Community.active.is_(True)))
        if c is None:
            raise InviteError(f"no active community with code {community!r}")
        community_id = c.id
    scope = await _scope_name(s, grid_id, community_id)
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    expires = now + timedelta(days=ttl_days)
    s.add(Invite(code=code, role=role.value, grid_id=grid_id, community_id=community_id,
                 expires_at=expires, created_at=now))
    return NewInvite(code, role, scope, expires)


_PREFIXED_CODE = re.compile(r"(?:/start|绑定|邀请码)[\s:：]*([A-Za-z2-9]{10})", re.IGNORECASE)
_BARE_CODE = re.compile(r"[A-HJ-NP-Z2-9]{10}")  # the alphabet invite codes are drawn from


def typed_code(text: str) -> str | None:
    """The invite code a staff member sent as a message, if that is all the message is: the
    code alone, or after /start, 绑定 or 邀请码 (channels with no deep link hand it over so)."""
    s = text.strip()
    m = _PREFIXED_CODE.fullmatch(s)
    if m:
        return m.group(1).upper()
    if _BARE_CODE.fullmatch(s) and any(c.isalpha() for c in s):
        return s
    return None


async def ensure_identity(s: AsyncSession, ctx: Ctx, private: bool, now: datetime) -> Identity:
    stmt = insert_for(s, Identity).values(
        channel=ctx.channel, user_id=ctx.user_id, display_name=ctx.user_name[:128],
        private_chat_id=ctx.chat_id if private else None, created_at=now)
    set_: dict[str, object] = {"display_name": stmt.excluded.display_name}
    if private:
        set_["private_chat_id"] = stmt.excluded.private_chat_id
    await s.execute(stmt.on_conflict_do_update(index_elements=["channel", "user_id"], set_=set_))
    ident = await directory.identity(s, ctx.channel, ctx.user_id)
    assert ident is not None
    await s.refresh(ident)
    return ident


async def redeem(s: AsyncSession, deps: Deps, ctx: Ctx, code: str) -> str:
    now = deps.clock()
    who = [f"u:{ctx.channel}:{ctx.user_id}", f"c:{ctx.channel}:{ctx.chat_id}"]
    wait = deps.bad_codes.wait(who, now.timestamp())
    if wait > 0:
        return t("start.code_cooldown", ctx.lang, minutes=math.ceil(wait / 60))
    inv = await s.scalar(select(Invite).where(Invite.code == code.strip().upper())
                         .with_for_update())
    if inv is None or inv.used_at is not None or inv.expires_at <= now:
        deps.bad_codes.strike(who, now.timestamp())
        return t("start.bad_code", ctx.lang)
    ident = await ensure_identity(s, ctx, private=True, now=now)
    if inv.role == PARTNER_ROLE:  # a partner unit's contact (转办), not a staff role
        return await redeem_partner(s, ctx, inv, ident, now)
    role = StaffRole(inv.role)
    person_id = ident.person_id
    if person_id is None:
        person_id = await _unclaimed_person(s, role, inv.grid_id)
    if person_id is None:
        person = Person(name=ctx.user_name[:64] or "—", phone="")
        s.add(person)
        await s.flush()
        person_id = person.id
    ident.person_id = person_id
    exists = await s.scalar(select(StaffAssignment).where(
        StaffAssignment.person_id == person_id, StaffAssignment.role == role.value,
        StaffAssignment.grid_id.is_(inv.grid_id) if inv.grid_id is None
        else StaffAssignment.grid_id == inv.grid_id,
        StaffAssignment.community_id.is_(inv.community_id) if inv.community_id is None
        else StaffAssignment.community_id == inv.community_id))
    if exists is None:
        s.add(StaffAssignment(person_id=person_id, role=role.value, grid_id=inv.grid_id,
                              community_id=inv.community_id))
    else:
        exists.active = True
    inv.used_at = now
    inv.used_by_identity_id = ident.id
    if role == StaffRole.CENTRE:  # not 指挥中心 的指挥中心工作人员
        return t("start.bound_centre", ctx.lang)
    scope = await _scope_name(s, inv.grid_id, inv.community_id)
    return t("start.bound", ctx.lang, scope=scope, role=t(f"role.{role.value}", ctx.lang))


async def _unclaimed_person(s: AsyncSession, role: StaffRole, grid_id: int | None) -> int | None:
    """A worker listed in grids.yaml who has no chat account yet takes the first invite."""
    if grid_id is None:
        return None
    claimed = select(Identity.person_id).where(Identity.person_id.is_not(None))
    return await s.scalar(
        select(StaffAssignment.person_id).where(
            StaffAssignment.role == role.value, StaffAssignment.grid_id == grid_id,
            StaffAssignment.active.is_(True), StaffAssignment.person_id.not_in(claimed))
        .order_by(StaffAssignment.id).limit(1))


async def _scope_name(s: AsyncSession, grid_id: int | None, community_id: int | None) -> str:
    if grid_id is not None:
        g = await s.get(Grid, grid_id)
        return scoped(g.name, "网格") if g else "—"
    if community_id is not None:
        c = await s.get(Community, community_id)
        return scoped(c.name, "社区") if c else "—"
    return "指挥中心"


async def bind_chat(s: AsyncSession, deps: Deps, ctx: Ctx, code: str, title: str
                    ) -> tuple[str, bool]:
    """Only a coordinator (of that community) or the centre may bind a group."""
    code = code.strip().upper()
    if not code:
        return t("bind.usage", ctx.lang), False
    roles = await directory.standing_roles(s, ctx.channel, ctx.user_id)
    grid = await s.scalar(select(Grid).where(Grid.code == code, Grid.active.is_(True)))
    comm = None if grid else await s.scalar(
        select(Community).where(Community.code == code, Community.active.is_(True)))
    if grid is None and comm is None:
        return t("bind.unknown", ctx.lang, code=code), False
    community_id = grid.community_id if grid else comm.id  # type: ignore[union-attr]
    if not _serves(roles, community_id, grid.id if grid else None):
        return t("bind.not_allowed", ctx.lang), False
    before = await s.scalar(select(ChatBinding).where(ChatBinding.channel == ctx.channel,
                                                      ChatBinding.chat_id == ctx.chat_id))
    # a group already serving one community is that community's to hand over (or the centre's)
    if before is not None and before.community_id != community_id \
            and not _serves(roles, before.community_id, before.grid_id):
        return t("bind.taken", ctx.lang, scope=await _scope_name(
            s, before.grid_id, before.community_id)), False
    ident = await ensure_identity(s, ctx, private=False, now=deps.clock())
    stmt = insert_for(s, ChatBinding).values(
        channel=ctx.channel, chat_id=ctx.chat_id, title=title[:128],
        grid_id=grid.id if grid else None, community_id=community_id,
        bound_by_identity_id=ident.id, created_at=deps.clock())
    await s.execute(stmt.on_conflict_do_update(
        index_elements=["channel", "chat_id"],
        set_={"grid_id": stmt.excluded.grid_id, "community_id": stmt.excluded.community_id,
              "title": stmt.excluded.title, "bound_by_identity_id": ident.id}))
    scope = scoped(grid.name, "网格") if grid else scoped(comm.name, "社区")  # type: ignore[union-attr]
    said = t("bind.ok", ctx.lang, scope=scope)
    if before is not None and (before.grid_id, before.community_id) != (
            grid.id if grid else None, community_id):
        said = t("bind.moved", ctx.lang, scope=scope,
                 was=await _scope_name(s, before.grid_id, before.community_id))
    return said + t("bind.how", ctx.lang), True


def _serves(roles: list[StaffAssignment], community_id: int | None, grid_id: int | None
            ) -> bool:
    return any(r.role == StaffRole.CENTRE
               or (r.role == StaffRole.COORDINATOR and r.community_id == community_id)
               or (r.role == StaffRole.LEADER and grid_id is not None and r.grid_id == grid_id)
               for r in roles)
