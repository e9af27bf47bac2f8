"""Typed, versioned callback data. Whatever comes back is untrusted: parse strictly."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData

from bot.messages import MAX_ID, Action
from bot.tickets.actions import OPS


class TicketCB(CallbackData, prefix="t1"):
    op: str
    tid: int
    arg: str = ""


def pack(action: Action) -> str:
    data = TicketCB(op=action.op, tid=action.ticket_id, arg=action.arg).pack()
    if len(data.encode()) > 64:  # Telegram's limit on callback_data
        raise ValueError(f"callback data too long: {data!r}")
    return data


def unpack(data: str | None) -> Action | None:
    """None for anything that isn't a well-formed action we issued a button for."""
    if not data or not data.startswith("t1:"):
        return None
    try:
        cb = TicketCB.unpack(data)
    except (ValueError, TypeError):
        return None
    if cb.op not in OPS or not 0 < cb.tid <= MAX_ID or len(cb.arg) > 32:
        return None
    return Action(cb.op, cb.tid, cb.arg)
