"""Ticket buttons as WeCom button-interaction template cards, and the click's key back.

A card holds little text (a title of about 26 characters, a subtitle of about 112) and at
most 6 buttons of about 10 characters (the capabilities say so: the renderer turns more, or
longer, into numbered choices): a message that does not fit goes as text first, and the card
after it carries the buttons.

The key a click sends back is untrusted: it is parsed strictly, and the core re-checks the
person's rights and the ticket's state as for any button.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from bot.messages import MAX_ID, Action, Outbound
from bot.tickets.actions import OPS

MAX_BUTTONS = 6
TITLE_CHARS = 26
SUBTITLE_CHARS = 112
_KEY = re.compile(r"t1\|([a-z_]{1,16})\|(\d{1,19})\|(.{0,32})", re.S)


def pack(action: Action) -> str:
    return f"t1|{action.op}|{action.ticket_id}|{action.arg}"


def unpack(key: str) -> Action | None:
    """None for anything that isn't a well-formed action we issued a button for."""
    m = _KEY.fullmatch(key or "")
    if m is None or m.group(1) not in OPS:
        return None
    tid = int(m.group(2))
    if not 0 < tid <= MAX_ID:
        return None
    return Action(m.group(1), tid, m.group(3))


def task_id(ticket_id: int | None) -> str:
    """Unique for the app (WeCom refuses a task id used before): digits, letters, _-@."""
    return f"t{ticket_id or 0}-{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Card:
    text_first: str  # what goes as a text message before the card ("" when the card says it)
    body: dict[str, Any]  # the template_card


def card_for(msg: Outbound) -> Card | None:
    """The card for a message with action buttons (None without any)."""
    buttons = [b for row in msg.buttons for b in row if b.action is not None][:MAX_BUTTONS]
    if not buttons:
        return None
    extra = [f"{b.text}：{b.url}" for row in msg.buttons for b in row if b.url]
    lines = msg.text.split("\n")
    title, rest = lines[0], "\n".join(lines[1:] + extra).strip()
    fits = len(title) <= TITLE_CHARS and len(rest) <= SUBTITLE_CHARS
    body: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": title if fits else _cut(title, TITLE_CHARS)},
        "task_id": task_id(msg.ticket_id),
        "button_list": [{"text": b.text, "style": 1 if i == 0 else 2,
                         "key": pack(b.action)}  # type: ignore[arg-type]
                        for i, b in enumerate(buttons)],
    }
    if fits:
        if rest:
            body["sub_title_text"] = rest
        return Card("", body)
    return Card("\n".join([msg.text, *extra]), body)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
