"""Numbered choices on channels without buttons: remembered when sent, looked up on "2".

The outbox remembers what it rendered (bot.delivery.render) in the same transaction that marks the
message sent; the core turns a bare number from that chat into the button's action, with the
same checks as a press.

Numbers go on from one message to the next while the earlier ones are live (a worker holding
two cards has 1–5 on the first and 6–10 on the second, so "1" is never the newest card's 接单
by mistake); they start again at 1 once nothing was offered for KEEP, or past MAX_LIVE.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import Action
from bot.sqlutil import insert_for
from models.tickets import OfferedChoice

KEEP = timedelta(days=3)  # a rating asked for lasts CONFIRM_DAYS; older numbers mean nothing
MAX_LIVE = 60  # then numbering starts again at 1 (two digits stay easy to type)
_NUMBER = re.compile(r"^\s*#?\s*([1-9][0-9]?)\s*[.。]?\s*$")


def number(text: str) -> int | None:
    """"2", "#2", "２" → 2; anything else → None."""
    m = _NUMBER.match(unicodedata.normalize("NFKC", text))
    return int(m.group(1)) if m else None


async def _live(s: AsyncSession, channel: str, chat_id: str, user_id: str,
                now: datetime) -> list[dict[str, Any]]:
    actions = await s.scalar(select(OfferedChoice.actions).where(
        OfferedChoice.channel == channel, OfferedChoice.chat_id == chat_id,
        OfferedChoice.user_id == user_id, OfferedChoice.created_at > now - KEEP))
    return list(actions or [])


async def next_number(s: AsyncSession, channel: str, chat_id: str, user_id: str | None,
                      now: datetime) -> int:
    """The number the next choice offered here gets."""
    live = await _live(s, channel, chat_id, user_id or "", now)
    return len(live) + 1 if 0 < len(live) < MAX_LIVE else 1


async def remember(s: AsyncSession, channel: str, chat_id: str, user_id: str | None,
                   actions: list[Action], now: datetime, start: int = 1) -> None:
    """Choices numbered from `start`: the ones before it stay as they were."""
    earlier = (await _live(s, channel, chat_id, user_id or "", now))[:start - 1] \
        if start > 1 else []
    values: list[dict[str, Any]] = earlier + [
        {"op": a.op, "ticket_id": a.ticket_id, "arg": a.arg} for a in actions]
    stmt = insert_for(s, OfferedChoice).values(
        channel=channel, chat_id=chat_id, user_id=user_id or "", actions=values, created_at=now)
    await s.execute(stmt.on_conflict_do_update(
        index_elements=["channel", "chat_id", "user_id"],
        set_={"actions": stmt.excluded.actions, "created_at": stmt.excluded.created_at}))


async def chosen(s: AsyncSession, channel: str, chat_id: str, user_id: str, n: int,
                 now: datetime) -> Action | None:
    """The action behind choice `n` offered to this person here (or to anyone here)."""
    rows = (await s.execute(select(OfferedChoice.user_id, OfferedChoice.actions).where(
        OfferedChoice.channel == channel, OfferedChoice.chat_id == chat_id,
        OfferedChoice.user_id.in_([user_id, ""]), OfferedChoice.created_at > now - KEEP))).all()
    offers: dict[str, list[dict[str, Any]]] = {u: a for u, a in rows}
    actions = offers.get(user_id) or offers.get("")
    if not actions or not 0 < n <= len(actions):
        return None
    a = actions[n - 1]
    return Action(str(a["op"]), int(a["ticket_id"]), str(a.get("arg", "")))
