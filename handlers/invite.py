"""`run_bot.py invite`: print a one-time code and the t.me link that redeems it."""

from __future__ import annotations

import asyncio

from bot.app import prepare_database
from bot.onboarding import INVITE_SCOPE, InviteError, create_invite
from config.settings import Settings
from handlers.telegram.runner import make_bot
from models.base import utcnow
from models.db import make_engine, make_sessionmaker
from models.enums import StaffRole


async def print_invite(settings: Settings, role: str, grid: str | None,
                       community: str | None) -> int:
    staff_role = StaffRole(role)
    needs = INVITE_SCOPE[staff_role]
    if needs is not None and not {"grid": grid, "community": community}[needs]:
        print(f"--{needs} is required for {staff_role.value}")
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
    name = settings.telegram_bot_username or await bot_username(settings)
    if name:
        print(f"link: https://t.me/{name}?start={inv.code}")
    else:
        print(f"send to the bot in private:  /start {inv.code}")
        print("(set TELEGRAM_BOT_USERNAME, or TELEGRAM_BOT_TOKEN, to print a t.me link)")
    return 0


async def bot_username(settings: Settings) -> str | None:
    """Ask Telegram who the bot is, when a token is configured; None if it can't be asked."""
    if settings.telegram_bot_token is None:
        return None
    bot = make_bot(settings)
    try:
        async with asyncio.timeout(10):
            return (await bot.me()).username
    except Exception as e:  # offline, wrong token: the code is still good without a link
        print(f"(could not ask Telegram for the bot's name: {type(e).__name__})")
        return None
    finally:
        await bot.session.close()
