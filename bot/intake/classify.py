"""Is a message a report? The words residents start one with, and the text we keep."""

from __future__ import annotations

import re
import unicodedata

from bot.messages import Inbound
from bot.routing.normalize import normalize
from models.enums import ChatKind

# Traditional forms too: some residents' phones are set to Traditional characters
REPORT_WORDS = ("#报事", "#報事", "报事", "報事", "报修", "報修", "反映", "投诉", "投訴", "/report")


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


# thanks and acknowledgements people send to a bot's answer: never a new problem
_THANKS = frozenset({
    "谢谢", "谢谢你", "谢谢您", "谢谢啦", "谢啦", "多谢", "感谢", "非常感谢", "谢谢了", "辛苦了",
    "辛苦", "好的", "好", "好的谢谢", "收到", "收到谢谢", "知道了", "明白", "嗯", "嗯嗯", "ok",
    "okay", "thanks", "thankyou", "麻烦了", "麻烦你了",
})
_ONLY_THANKS = re.compile(
    "(?:" + "|".join(map(re.escape, sorted(_THANKS, key=len, reverse=True))) + ")+")
# zero-width and bidirectional controls: they can hide a report word from matching and
# turn a worker's card around (U+202E); ZWJ inside emoji goes too, which only splits them
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def is_chatter(inbound: Inbound) -> bool:
    """Thanks, an emoji, punctuation: something said to the bot that is not a problem."""
    if inbound.media or inbound.location or report_word(inbound.text):
        return False
    words = "".join(ch for ch in normalize(inbound.text)
                    if unicodedata.category(ch)[0] not in "PSZC")
    return not words or _ONLY_THANKS.fullmatch(words) is not None


_BUILDING = re.compile(r"\s*([0-9一二三四五六七八九十百零两]+\s*(?:号楼|号院|栋|幢|单元|号))")


def place_label(text: str, matched: list[str]) -> str:
    """The places the router matched, each with the building number written after it.

    `matched` may carry routing notes (chat, location, 南光村≈南关村): only the names count.
    """
    out: list[str] = []
    for m in matched:
        if m in ("chat", "location"):
            continue
        name = m.split("≈")[-1]
        at = text.find(m.split("≈")[0])
        number = _BUILDING.match(text, at + len(m.split("≈")[0])) if at >= 0 else None
        out.append(name + (number.group(1).replace(" ", "") if number else ""))
    return "、".join(out)


def clean_text(text: str) -> str:
    word = report_word(text)
    if word:
        text = text.lstrip()[len(word):]
    return _LEAD.sub("", text).strip()[:MAX_TEXT]
