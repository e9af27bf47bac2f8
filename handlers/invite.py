"""`run_bot.py invite`: print a one-time code, in Chinese for the county office, and the ways
a staff member redeems it (one per channel).

aiogram is imported only to ask Telegram for the bot's name, when a token is set and the name
is not configured: importing it takes seconds.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.app import prepare_database
from bot.notify.texts import t
from bot.people.onboarding import INVITE_SCOPE, InviteError, NewInvite, create_invite
from config.settings import Settings
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.enums import StaffRole

BEIJING_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin",
                           "PRC"})


def local_time(at: datetime, timezone: str) -> str:
    label = "北京时间" if timezone in BEIJING_ZONES else timezone
    return f"{at.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}（{label}）"


def invite_line(inv: NewInvite, timezone: str) -> str:
    return (f"邀请码：{inv.code} 角色：{t(f'role.{inv.role.value}', 'zh')} 范围：{inv.scope} "
            f"有效期至：{local_time(inv.expires_at, timezone)}")


async def ways_in(settings: Settings, code: str) -> list[str]:
    """How the invited person redeems the code: one line per enabled channel."""
    lines: list[str] = []
    from handlers.wechat.oa import OfficialAccount, invite_hint

    oa = OfficialAccount.from_settings(settings)
    if settings.telegram_bot_token is not None or settings.telegram_bot_username or oa is None:
        name = settings.telegram_bot_username or await bot_username(settings)
        lines.append(f"Telegram：打开 https://t.me/{name}?start={code}" if name
                     else f"Telegram：私聊机器人，发送 /start {code}")
    if oa is not None:
        lines.append(invite_hint(code))
    from handlers.serve import present

    if any(k.module == "handlers.wecom.app" for k in present(settings)):
        from handlers.wecom.texts import invite_hint as wecom_hint

        lines.append(wecom_hint(code))
    if any(k.module == "handlers.bridge.edge" for k in present(settings)):
        from handlers.bridge.texts import invite_hint as bridge_hint

        lines.append(bridge_hint(code))
    return lines


async def print_invite(settings: Settings, role: str, grid: str | None,
                       community: str | None) -> int:
    staff_role = StaffRole(role)
    needs = INVITE_SCOPE[staff_role]
    if needs is not None and not {"grid": grid, "community": community}[needs]:
        print(f"run_bot.py invite: error: --role {role} 需要 --{needs}", file=sys.stderr)
        return 2
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            inv = await create_invite(s, staff_role, grid=grid, community=community,
                                      now=utcnow(), ttl_days=settings.invite_ttl_days)
    except InviteError:
        # the core's message is English; which code was not found is known here
        word, code = ("网格", grid) if needs == "grid" else ("社区", community)
        print(f"没有找到{word}编号 {code}（或已停用），未生成邀请码", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(invite_line(inv, settings.timezone))
    for line in await ways_in(settings, inv.code):
        print(line)
    print("邀请码只能用一次。")
    return 0


async def bot_username(settings: Settings) -> str | None:
    """Ask Telegram who the bot is, when a token is configured; None if it can't be asked."""
    if settings.telegram_bot_token is None:
        print("（设置 TELEGRAM_BOT_USERNAME 或 TELEGRAM_BOT_TOKEN 后可给出 t.me 链接）",
              file=sys.stderr)
        return None
    from handlers.telegram.runner import make_bot

    bot = make_bot(settings)
    try:
        async with asyncio.timeout(10):
            return (await bot.me()).username
    except Exception as e:  # offline, wrong token: the code is still good without a link
        print(f"（没能向 Telegram 查询机器人用户名：{type(e).__name__}；可设置 "
              "TELEGRAM_BOT_USERNAME）", file=sys.stderr)
        return None
    finally:
        await bot.session.close()


async def print_partner_invite(settings: Settings, partner: str, name: str | None) -> int:
    """`invite --partner CODE [--name 姓名]`: a code for a partner unit's contact (转办)."""
    from bot.people.partners import PartnerInviteError, create_partner_invite

    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            inv = await create_partner_invite(s, partner, name, now=utcnow(),
                                              ttl_days=settings.invite_ttl_days)
    except PartnerInviteError as e:
        why = "它的联系人都已绑定，要再加一位请写 --name 姓名" if e.all_bound \
            else "没有这个编号的协同单位（或已停用），请查看 partners.csv"
        print(f"协同单位 {partner}：{why}。未生成邀请码", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"邀请码：{inv.code} 协同单位：{inv.unit} 联系人：{inv.contact} "
          f"有效期至：{local_time(inv.expires_at, settings.timezone)}")
    for line in await ways_in(settings, inv.code):
        print(line)
    print("邀请码只能用一次。")
    return 0
