"""Fit one composed message to a channel's capabilities (bot.delivery.capabilities).

- A button asking for the person's location is left out where the channel has none, and a
  message that was only that button is not sent.
- Buttons a channel cannot show (or not whole: labels too long) become numbered choices in
  the text ("回复数字选择"); the actions behind the numbers are returned so the outbox can
  remember them for that chat (bot.delivery.choices), and a reply of "2" does what the
  second button does.
- Text over the channel's limit is split, on line breaks where possible; the last part
  carries the choices.
"""

from __future__ import annotations

from dataclasses import replace

from bot.delivery.capabilities import Capabilities
from bot.messages import Action, Outbound
from bot.notify.texts import t


def render(msg: Outbound, caps: Capabilities, lang: str = "", start: int = 1
           ) -> tuple[list[Outbound], list[Action]]:
    """`start`: the first choice's number (numbers continue while earlier ones are live)."""
    choices: list[Action] = []
    text = msg.text
    if not caps.location_button and msg.buttons:
        if all(b.request_location for row in msg.buttons for b in row):
            return [], []  # it only offered that button; the question already says "send it"
        msg = replace(msg, buttons=[[b for b in row if not b.request_location]
                                    for row in msg.buttons])
    if numbered(msg, caps):
        lines: list[str] = []
        for row in msg.buttons:
            for b in row:
                if b.action is not None:
                    choices.append(b.action)
                    lines.append(f"{start + len(choices) - 1}. {b.text}")
                elif b.url:
                    lines.append(f"{b.text}：{b.url}")
                elif b.request_location:
                    lines.append(t("choices.location", lang))
        if choices:
            lines.insert(0, t("choices.reply_number", lang))
        text = "\n".join([text, *lines]) if lines else text
        msg = replace(msg, buttons=[])
    parts = split(text, caps)
    out: list[Outbound] = []
    for i, part in enumerate(parts):
        first, last = i == 0, i == len(parts) - 1
        # what a message is about (photos, whom it answers) goes first; what to do, last
        out.append(replace(
            msg, text=part, photos=msg.photos if first else [],
            reply_to=msg.reply_to if first else None,
            mention_user_id=msg.mention_user_id if first else None,
            mention_name=msg.mention_name if first else None,
            buttons=msg.buttons if last else [], remember=msg.remember and last))
    return out, choices


def numbered(msg: Outbound, caps: Capabilities) -> bool:
    """Do this message's buttons become numbered choices on this channel?"""
    buttons = [b for row in msg.buttons for b in row
               if caps.location_button or not b.request_location]
    return bool(buttons) and (caps.buttons == 0 or len(buttons) > caps.buttons
                              or any(len(b.text) > caps.button_chars for b in buttons))


def split(text: str, caps: Capabilities) -> list[str]:
    """Parts of at most caps.max_text, cut at a line break when there is one in reach."""
    if caps.length(text) <= caps.max_text:
        return [text]
    parts: list[str] = []
    rest = text
    while caps.length(rest) > caps.max_text:
        cut = _fit(rest, caps)
        nl = rest.rfind("\n", 0, cut)
        if nl > cut // 2:
            cut = nl
        parts.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    if rest:
        parts.append(rest)
    return parts


def _fit(text: str, caps: Capabilities) -> int:
    """How many characters of `text` fit in one part (never splits a surrogate pair)."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if caps.length(text[:mid]) <= caps.max_text:
            lo = mid
        else:
            hi = mid - 1
    return lo
