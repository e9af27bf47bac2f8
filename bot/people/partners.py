"""A partner unit's contact joins by an invite code, on whichever channel they use.

`run_bot.py invite --partner CODE [--name 姓名]` makes a one-time code for one contact of the
unit (the one partners.csv lists, or a new one by name); redeeming it binds the account to
that person, who then acts on tickets handed to the unit (转办). The invite row carries the
person (Invite.person_id) and the role "partner"; the unit is found through the contact row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Ctx
from bot.notify.texts import register, t
from models.partners import Partner, PartnerContact
from models.people import Identity, Invite, Person

PARTNER_ROLE = "partner"  # Invite.role of a partner contact's invite
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # the same as staff invites (onboarding)

register({
    "start.bound_partner": "绑定成功：您现在是{unit}的联系人。转办给{unit}的工单会发到这里，"
                           "可回复：接单 工单号；进展 工单号 内容；办结 工单号 办理结果。",
}, {
    "start.bound_partner": "Done: you are now the contact of {unit}. Tickets handed to {unit} "
                           "come here; reply 接单 NUMBER, 进展 NUMBER progress, "
                           "办结 NUMBER result.",
})


class PartnerInviteError(ValueError):
    def __init__(self, message: str, all_bound: bool = False) -> None:
        super().__init__(message)
        self.all_bound = all_bound  # else: no such unit


@dataclass(frozen=True, slots=True)
class PartnerInvite:
    code: str
    unit: str
    contact: str
    expires_at: datetime


async def create_partner_invite(s: AsyncSession, partner_code: str, name: str | None, *,
                                now: datetime, ttl_days: int) -> PartnerInvite:
    """An invite for the unit's contact called `name` (a new contact when the unit has none
    of that name), or, without a name, for its first contact no account is bound to yet."""
    unit = await s.scalar(select(Partner).where(
        func.upper(Partner.code) == partner_code.strip().upper(), Partner.active.is_(True)))
    if unit is None:
        raise PartnerInviteError(f"no active partner with code {partner_code!r}")
    rows = (await s.execute(
        select(Person, Identity.id)
        .join(PartnerContact, PartnerContact.person_id == Person.id)
        .outerjoin(Identity, Identity.person_id == Person.id)
        .where(PartnerContact.partner_id == unit.id, PartnerContact.active.is_(True))
        .order_by(PartnerContact.id))).all()
    person: Person | None
    if name:
        person = next((p for p, _i in rows if p.name == name.strip()), None)
        if person is None:
            person = Person(name=name.strip()[:64], phone="", active=True)
            s.add(person)
            await s.flush()
            s.add(PartnerContact(partner_id=unit.id, person_id=person.id, source="invite"))
    else:
        person = next((p for p, ident in rows if ident is None), None)
        if person is None:
            raise PartnerInviteError(f"partner {partner_code!r}: every contact is bound "
                                     "already; give --name for another one", all_bound=True)
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    expires = now + timedelta(days=ttl_days)
    s.add(Invite(code=code, role=PARTNER_ROLE, person_id=person.id, expires_at=expires,
                 created_at=now))
    return PartnerInvite(code, unit.name, person.name, expires)


async def redeem_partner(s: AsyncSession, ctx: Ctx, inv: Invite, ident: Identity,
                         now: datetime) -> str:
    """Bind the account to the invited contact. An account already someone's (a worker who
    also acts for a unit) stays that person's, who becomes the unit's contact as well."""
    invited = inv.person_id
    units = (await s.scalars(select(PartnerContact).where(
        PartnerContact.person_id == invited, PartnerContact.active.is_(True)))).all()
    if ident.person_id is None:
        ident.person_id = invited
    elif ident.person_id != invited:
        have = {c.partner_id: c for c in (await s.scalars(select(PartnerContact).where(
            PartnerContact.person_id == ident.person_id))).all()}
        for u in units:
            if u.partner_id in have:
                have[u.partner_id].active = True
            else:
                s.add(PartnerContact(partner_id=u.partner_id, person_id=ident.person_id,
                                     source="invite"))
        placeholder = await s.scalar(select(Identity.id).where(
            Identity.person_id == invited)) is None
        for u in units:  # the name the invite was made for stood for this person
            if placeholder and u.source == "invite":
                u.active = False
    inv.used_at = now
    inv.used_by_identity_id = ident.id
    names = [p.name for p in (await s.scalars(select(Partner).where(
        Partner.id.in_([u.partner_id for u in units])).order_by(Partner.id))).all()]
    return t("start.bound_partner", ctx.lang, unit="、".join(names) or "—")
