"""Call-back results typed in a chat: only command-centre staff may record them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks import words
from bot.callbacks.record import record
from bot.callbacks.texts import EXAMPLE
from bot.deps import Ctx, Deps
from bot.notify.texts import t
from bot.people import directory
from bot.tickets.lifecycle import Refused
from models.enums import StaffRole


@dataclass(frozen=True, slots=True)
class Said:
    """What a message said: a result, or (None) a call number with words that are not one."""

    result: words.Result | None


def parse(text: str) -> Said | None:
    """None when the message is no call-back result (the core reads it on as usual)."""
    try:
        result = words.parse(text)
    except words.Unclear:
        return Said(None)
    return None if result is None else Said(result)


async def carry_out(s: AsyncSession, deps: Deps, ctx: Ctx, said: Said) -> str:
    """The answer for the centre member; raises Refused (nothing recorded)."""
    roles = await directory.standing_roles(s, ctx.channel, ctx.user_id)
    if not any(a.role == StaffRole.CENTRE for a in roles):
        raise Refused(t("callback.centre_only", ctx.lang))
    if said.result is None:
        raise Refused(t("callback.usage", ctx.lang, example=EXAMPLE))
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, None)
    return await record(s, deps, said.result, actor)
