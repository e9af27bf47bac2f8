"""A call-back result in words, as the centre types it in any chat.

    回访 2026W49-001 满意 [备注]                       the same for all three
    回访 2026W49-001 社区满意 网格员基本满意 业委会不满意 [备注：…]
    回访 H123 未接通                                   by household id (H + its number)

业委会 may be 无 where there is no owners' committee. Anything else after a call number is
unclear and refused with an example; text that does not name a call number is not a
call-back result at all (None), so a resident's sentence starting with 回访 stays theirs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.enums import Satisfaction

_HEAD = re.compile(r"^回[访訪]\s*[:：]?\s*(?P<ref>\d{4}W\d{2}-\d{1,4}|H\d{1,9})(?![\w-])"
                   r"\s*[:：,，]?\s*(?P<rest>.*)$", re.S | re.I)
_RATING = "基本满意|基本滿意|不满意|不滿意|满意|滿意"
_UNREACHED = re.compile(r"^(?:未接通|未接|没接通|沒接通|无人接听|無人接聽|空号|空號)(?P<note>.*)$",
                        re.S)
_ALL = re.compile(rf"^(?P<r>{_RATING})(?P<note>.*)$", re.S)
_PART = re.compile(rf"(?P<who>社区|社區|网格员|網格員|业委会|業委會)\s*[:：]?\s*"
                   rf"(?P<r>{_RATING}|无|無)")
_SEP = re.compile(r"[\s,，;；、]*")
_NOTE = re.compile(r"^(?:备注|備註)?\s*[:：]?\s*")
_WHO = {"社区": "community", "社區": "community", "网格员": "worker", "網格員": "worker",
        "业委会": "committee", "業委會": "committee"}
NONE = ""  # no rating: a place without an owners' committee


@dataclass(frozen=True, slots=True)
class Result:
    ref: str  # a call number (2026W49-001) or a household id (H123)
    reached: bool
    community: str = NONE  # Satisfaction values, or NONE
    worker: str = NONE
    committee: str = NONE
    note: str = ""


class Unclear(ValueError):
    """A call number with words that are not a result: refused with an example."""


def _rating(word: str) -> str:
    w = word.replace("滿", "满")
    return {"满意": Satisfaction.SATISFIED.value, "基本满意": Satisfaction.FAIRLY.value,
            "不满意": Satisfaction.UNSATISFIED.value}.get(w, NONE)


def _note(text: str) -> str:
    return _NOTE.sub("", text.strip(" \t\n,，;；。"), count=1).strip()[:500]


def parse(text: str) -> Result | None:
    """The result said, None if the text is no call-back result; raises Unclear."""
    m = _HEAD.match(unicodedata.normalize("NFKC", text).strip())
    if m is None:
        return None
    ref, rest = m["ref"].upper(), m["rest"].strip()
    if u := _UNREACHED.match(rest):
        return Result(ref, reached=False, note=_note(u["note"]))
    if a := _ALL.match(rest):
        r = _rating(a["r"])
        return Result(ref, True, r, r, r, _note(a["note"]))
    said: dict[str, str] = {}
    pos = 0
    while (p := _PART.match(rest, pos)) is not None:
        who = _WHO[p["who"]]
        if who in said:
            raise Unclear(ref)
        said[who] = _rating(p["r"])
        pos = _SEP.match(rest, p.end()).end()  # type: ignore[union-attr]
    if set(said) != {"community", "worker", "committee"} \
            or NONE in (said["community"], said["worker"]):
        raise Unclear(ref)
    return Result(ref, True, said["community"], said["worker"], said["committee"],
                  _note(rest[pos:]))
