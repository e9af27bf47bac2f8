"""Is a message a report? The words residents start one with, and the text we keep."""

from __future__ import annotations

import re

from bot.messages import Inbound
from models.enums import ChatKind

REPORT_WORDS = ("#报事", "报事", "报修", "反映", "投诉", "/report")


MAX_TEXT = 2000


_LEAD = re.compile(r"^[\s:：，,。.!！]+")


def report_word(text: str) -> str | None:
    s = text.lstrip()
    return next((w for w in REPORT_WORDS if s.startswith(w)), None)


def is_command(text: str) -> bool:
    """A slash command (ours or another bot's); /report is the one that files a report."""
    return text.lstrip().startswith("/") and report_word(text) is None


def is_report(inbound: Inbound) -> bool:
    if is_command(inbound.text):
        return False
    if inbound.chat_kind == ChatKind.PRIVATE:
        return True
    return inbound.mentions_bot or inbound.reply_to_bot or report_word(inbound.text) is not None


def clean_text(text: str) -> str:
    word = report_word(text)
    if word:
        text = text.lstrip()[len(word):]
    return _LEAD.sub("", text).strip()[:MAX_TEXT]
