"""`run_bot.py wecom sync`: binds the county's staff to their WeCom userids by mobile number.

For each active person who holds a staff role and has a mobile number in the county files,
WeCom's directory is asked for the userid (user/getuserid; the app needs the contact
permission and the server's IP on WeCom's allow-list). The person is then bound on the
`wecom` channel, as an invite code would bind them. Run it again at any time: people already
bound are left alone, a userid already bound to someone else is reported and not moved.

Mobile numbers are sent to WeCom and never printed: the report names people and their grids.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import prepare_database
from config.settings import Settings
from handlers.wechat.api import Unreachable, WeChatError
from handlers.wechat.tokens import TokenUnavailable
from handlers.wecom.api import WeComClient
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.enums import Channel
from models.partners import PartnerContact
from models.people import Identity, Person, StaffAssignment

log = logging.getLogger(__name__)

CH = Channel.WECOM.value
GET_USERID = "/cgi-bin/user/getuserid"
NOT_FOUND = frozenset({46004, 60111})  # no member with that mobile; userid not found
MOBILE_DIGITS = 11


@dataclass
class SyncReport:
    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    no_mobile: list[str] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"企业微信绑定：新绑定 {len(self.bound)} 人，已绑定 {len(self.already)} 人，"
               f"通讯录里没找到 {len(self.not_found)} 人，没有手机号 {len(self.no_mobile)} 人，"
               f"冲突 {len(self.clashes)} 人。"]
        for label, names in (("新绑定", self.bound), ("通讯录里没找到", self.not_found),
                             ("没有手机号", self.no_mobile), ("冲突", self.clashes)):
            if names:
                out.append(f"{label}：{'、'.join(names)}")
        return out


def mobile(phone: str) -> str | None:
    """An 11-digit mainland mobile number from what the county files hold, else None
    (a landline such as 0357-7010101 cannot find anyone in WeCom)."""
    digits = "".join(c for c in phone if c.isdigit())
    if digits.startswith("86") and len(digits) == MOBILE_DIGITS + 2:
        digits = digits[2:]
    return digits if len(digits) == MOBILE_DIGITS and digits.startswith("1") else None


async def _staff(s: AsyncSession) -> list[Person]:
    """The county's staff and the partner units' contacts (转办) listed with a phone."""
    ids = select(StaffAssignment.person_id).where(StaffAssignment.active.is_(True)).union(
        select(PartnerContact.person_id).where(PartnerContact.active.is_(True)))
    return list(await s.scalars(select(Person).where(Person.active.is_(True),
                                                     Person.id.in_(ids)).order_by(Person.id)))


async def sync(sm: async_sessionmaker[AsyncSession], api: WeComClient) -> SyncReport:
    """Bind every staff member WeCom knows by mobile. No transaction is open while WeCom is
    asked (the shared token may need writing meanwhile); each binding commits on its own."""
    report = SyncReport()
    async with sm() as s:
        bound = set(await s.scalars(select(Identity.person_id).where(
            Identity.channel == CH, Identity.person_id.is_not(None))))
        staff = [(p.id, p.name, p.phone) for p in await _staff(s)]
    for person_id, name, phone in staff:
        if person_id in bound:
            report.already.append(name)
            continue
        number = mobile(phone)
        if number is None:
            report.no_mobile.append(name)
            continue
        try:
            got = await api.call(GET_USERID, {"mobile": number})
        except WeChatError as e:
            if e.errcode not in NOT_FOUND:
                raise
            report.not_found.append(name)
            continue
        userid = str(got.get("userid") or "")
        if not userid:
            report.not_found.append(name)
            continue
        async with sm() as s, s.begin():
            ident = await s.scalar(select(Identity).where(Identity.channel == CH,
                                                          Identity.user_id == userid))
            if ident is not None and ident.person_id not in (None, person_id):
                report.clashes.append(name)
                continue
            if ident is None:
                s.add(Identity(channel=CH, user_id=userid, display_name=name,
                               person_id=person_id, private_chat_id=userid,
                               created_at=utcnow()))
            else:
                ident.person_id, ident.private_chat_id = person_id, userid
                ident.display_name = ident.display_name or name
        report.bound.append(name)
    return report


async def run_sync(settings: Settings) -> int:
    if not (settings.wecom_corp_id and settings.wecom_secret):
        print("企业微信同步失败：没有配置 WECOM_CORP_ID 和 WECOM_SECRET（见 .env.example）",
              file=sys.stderr)
        return 1
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    try:
        sm = make_sessionmaker(engine)
        api = WeComClient(settings.wecom_api_base, settings.wecom_corp_id,
                          settings.wecom_secret.get_secret_value(), sm,
                          settings.wechat_http_timeout_s)
        try:
            report = await sync(sm, api)
        except (WeChatError, Unreachable, TokenUnavailable) as e:
            print(f"企业微信同步中断：企业微信没有正常应答（{type(e).__name__}"
                  f"{f' {e.errcode}' if isinstance(e, WeChatError) else ''}），"
                  "已绑定的保留，稍后再运行一次即可", file=sys.stderr)
            return 1
        finally:
            await api.close()
    finally:
        await engine.dispose()
    for line in report.lines():
        print(line)
    return 0


def sync_command(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(run_sync(settings))
