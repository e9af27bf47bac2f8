"""Every action as words: `接单 NUM`, `办结 NUM 说明`, `满意 NUM` … parsed once, for every channel.

Channels without buttons (a WeChat Official Account, a bridge) and people who prefer typing
use these; they carry the same rights as the buttons (bot.tickets.by_words checks them the
same way).
Simplified and Traditional forms are both accepted.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.enums import Satisfaction

# (spellings, verb, argument); longer spellings first so 不满意 is not read as 满意
_VERBS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("基本满意", "基本滿意"), "rate", Satisfaction.FAIRLY.value),
    (("不满意", "不滿意"), "rate", Satisfaction.UNSATISFIED.value),
    (("满意", "滿意"), "rate", Satisfaction.SATISFIED.value),
    (("不予受理",), "reject", ""),
    (("接单", "接單"), "ack", ""),
    (("进展", "進展"), "progress", ""),
    (("办结", "辦結"), "resolve", ""),
    (("退回",), "return", ""),
    (("转派", "轉派"), "transfer", ""),
    (("改类别", "改類別"), "category", ""),
    # a coordinator's: the overdue list, reassigning, priority, an internal note
    (("超时工单", "超時工單", "超时", "超時"), "overdue", ""),
    (("改派",), "reassign", ""),
    (("优先", "優先"), "priority", ""),
    (("备注", "備註"), "remark", ""),
    # co-reports (附议): 合并 NUM 到 NUM, 拆分 NUM (bot.tickets.merge)
    (("合并", "合併"), "merge", ""),
    (("拆分",), "split", ""),
    # 转办: to a partner unit (bot.tickets.partners)
    (("转办", "轉辦"), "handover", ""),
)
_SPELLINGS = {s: (verb, arg) for spellings, verb, arg in _VERBS for s in spellings}
_ALT = "|".join(sorted(_SPELLINGS, key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class Said:
    # rate | reject | ack | progress | resolve | return | transfer | category | overdue |
    # reassign | priority | remark | handover
    verb: str
    number: str | None  # a full ticket number, or the digits a person typed for one
    rest: str  # the note, reason, grid or category that follows
    arg: str = ""  # the rating, for rate


def parse(text: str, prefix: str) -> Said | None:
    """`接单 FS-20261130-0007`, `办结 7 已清运`, `不满意 还是没修好`; None if not an action."""
    s = unicodedata.normalize("NFKC", text).strip()
    m = re.match(
        rf"^(?P<verb>{_ALT})\s*[:：,，]?\s*"
        # a number only when it stands alone: 进展 3号楼… is a note about building 3
        rf"(?P<num>(?:{re.escape(prefix)}-?)?(?:\d{{8}}-)?\d{{1,6}}(?=[\s:：,，]|$))?"
        r"\s*[:：,，]?\s*(?P<rest>.*)$", s, re.S | re.I)
    if m is None:
        return None
    verb, arg = _SPELLINGS[m["verb"]]
    rest = m["rest"].strip()
    if not rest.strip("!。.~"):  # 满意！
        rest = ""
    num = m["num"]
    if num is None and rest and m.start("rest") == m.end("verb") \
            and arg != Satisfaction.UNSATISFIED:
        # 接单了吗 / 满意度不高: the verb starts a sentence; 不满意还是没修好 gives its reason
        return None
    return Said(verb, num.upper() if num else None, rest, arg)


def number_pattern(prefix: str) -> re.Pattern[str]:
    """A full ticket number anywhere in a text (`FS-20261130-0007`)."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(prefix)}-\d{{8}}-\d{{4,}}(?!\d)", re.I)
