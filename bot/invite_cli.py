"""`run_bot.py invite`: print a one-time code and the deep link that redeems it."""

from __future__ import annotations

from bot.app import prepare_database
from bot.onboarding import InviteError, create_invite
from config.settings import Settings
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.enums import StaffRole


async def print_invite(settings: Settings, role: str, grid: str | None,
                       community: str | None) -> int:
    staff_role = StaffRole(role)
    if staff_role in (StaffRole.WORKER, StaffRole.LEADER) and not grid:
        print("--grid is required for worker and leader")
        return 2
    if staff_role == StaffRole.COORDINATOR and not community:
        print("--community is required for coordinator")
        return 2
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            inv = await create_invite(s, staff_role, grid=grid, community=community,
                                      now=utcnow(), ttl_days=settings.invite_ttl_days)
    except InviteError as e:
        print(f"error: {e}")
        return 1
    finally:
        await engine.dispose()
    print(f"role: {staff_role.value}  scope: {inv.scope}")
    print(f"code: {inv.code}  (one use, expires {inv.expires_at:%Y-%m-%d %H:%M} UTC)")
    name = settings.telegram_bot_username
    if name:
        print(f"link: https://t.me/{name}?start={inv.code}")
    else:
        print(f"send to the bot in private:  /start {inv.code}")
        print("(set TELEGRAM_BOT_USERNAME to print a t.me link)")
    return 0
