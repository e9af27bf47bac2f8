"""House and building numbers: the `numbers` column of places.csv and numbers in messages.

A spec is `;`-separated items, each `A-B` or `A`, optionally followed by ` odd` or ` even`
(`单`/`双` are accepted too): `1-4`, `1-199 odd`, `7; 9-12`.

In a message, only numbers written right after a place mention count as its address
(`府前街23号`, `锦绣花园3号楼`, `锦绣花园12栋`, `锦绣花园的第三栋`, `锦绣花园9-2-301`), so counts
such as `有3个路灯坏了`, `3栋楼之间` or floors (`5楼`, `3单元`) never decide a grid. Several
numbers may be written there, and all of them count: a list (`3号楼和12号楼`, `3、5号楼`) or a
range (`3-8号楼`, `3至8号楼`, `3号楼到8号楼`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import cn2an

_PARITY = {"odd": "odd", "单": "odd", "单号": "odd", "even": "even", "双": "even", "双号": "even"}


@dataclass(frozen=True, slots=True)
class NumberRange:
    lo: int
    hi: int
    parity: str | None = None  # "odd" | "even" | None

    def contains(self, n: int) -> bool:
        if n < self.lo or n > self.hi:
            return False
        if self.parity is None:
            return True
        return (n % 2 == 1) == (self.parity == "odd")

    def overlaps(self, other: NumberRange) -> bool:
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        if lo > hi:
            return False
        if self.parity and other.parity and self.parity != other.parity:
            return False
        return any(self.contains(n) and other.contains(n) for n in (lo, lo + 1) if n <= hi)

    def __str__(self) -> str:
        core = str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        return f"{core} {self.parity}" if self.parity else core


class NumberSpecError(ValueError):
    pass


_ITEM = re.compile(r"^(\d+)\s*(?:[-~至到]\s*(\d+))?\s*(odd|even|单号|双号|单|双)?$")


def parse_ranges(spec: str) -> tuple[NumberRange, ...]:
    """Parse a `numbers` cell; raises NumberSpecError with a reason a human can act on."""
    text = unicodedata.normalize("NFKC", spec).strip().lower()
    if not text:
        return ()
    out: list[NumberRange] = []
    for raw in text.split(";"):
        item = raw.strip()
        if not item:
            continue
        m = _ITEM.match(item)
        if not m:
            raise NumberSpecError(
                f"bad number range {item!r}: expected A-B or A, optionally followed by odd/even"
            )
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        parity = _PARITY[m.group(3)] if m.group(3) else None
        if lo > hi:
            raise NumberSpecError(f"bad number range {item!r}: {lo} is greater than {hi}")
        r = NumberRange(lo, hi, parity)
        if parity and not any(r.contains(n) for n in (lo, lo + 1) if n <= hi):
            raise NumberSpecError(f"number range {item!r} holds no {parity} number")
        out.append(r)
    return tuple(out)


def format_ranges(ranges: tuple[NumberRange, ...]) -> str:
    return "; ".join(str(r) for r in ranges)


_CN_DIGITS = "零〇一二三四五六七八九十百千"
_FILLER = r"(?:小区|家属院|院内|院里|院|的|上|东区|西区|南区|北区){0,2}"
_SEP = r"(?:、|,|/|和|与|跟|以及|及|或者|或|还有)"
# one number or range; digits or Chinese numerals (两 is left out: "两栋楼" is a count)
_NUM = rf"[0-9]+|[{_CN_DIGITS}]+"
_WORD = r"号楼|号院|号门|号|栋|幢|座|#"
_ONE = rf"(第?)({_NUM})({_WORD})?(?:([-~至到])第?({_NUM})({_WORD})?)?"
_FIRST = re.compile(_FILLER + _ONE)  # right after the place
_NEXT = re.compile(_SEP + _ONE)  # each further number of a list
_SEP_FIRST = frozenset("、,/和与跟以及或还")  # saves a regex call after most numbers
_END = re.compile(r"$|[,.;:!?、。)\]\s]")
_ROOM = re.compile(r"-[0-9]")  # 9-2-301: building, unit, room
# after "N栋楼" these make 楼 part of a word about one building (12栋楼道), not a count
_ONE_BUILDING = ("楼道", "楼梯", "楼上", "楼下", "楼顶", "楼前", "楼后", "楼门", "楼里", "楼内")
_COUNTED = frozenset(("栋", "幢"))  # words that also count buildings: 3栋楼之间
_WIDEST = 1000  # a range wider than this names the whole place

# one written number or range: lo, hi, its building word (if any), 第 before it, where it ends
_Item = tuple[int, int, str | None, bool, int]


@lru_cache(maxsize=4096)
def cn_to_int(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    try:
        v = cn2an.cn2an(s, "smart")
    except (ValueError, KeyError, TypeError):
        return None
    return int(v) if float(v).is_integer() else None


@lru_cache(maxsize=4096)
def _span(lo: int, hi: int) -> NumberRange:
    return NumberRange(lo, hi)


def _closed(text: str, item: _Item) -> bool:
    if item[2] is not None:
        return True
    return _END.match(text, item[4]) is not None or _ROOM.match(text, item[4]) is not None


def _item(text: str, m: re.Match[str]) -> _Item | None:
    ordinal, a_txt, a_word, to, b_txt, b_word = m.groups()
    a = cn_to_int(a_txt)
    if a is None:
        return None
    if b_txt is None:
        return a, a, a_word, bool(ordinal), m.end()
    b = cn_to_int(b_txt)
    single = (a, a, a_word, bool(ordinal), m.end(3) if a_word else m.end(2))
    if b is None:
        return single
    # a hyphen joins a range only when a building word or the end closes it; 9-2-301 and
    # 9-2单元 are building-unit(-room), and 23-1号 is house 23's sub-number
    if to == "-" and (a >= b or (b_word is None and _END.match(text, m.end()) is None)):
        if a_word is None and _ROOM.match(text, single[4]) is None:
            return None
        return single
    return min(a, b), max(a, b), b_word, bool(ordinal), m.end()


def _counts_buildings(text: str, item: _Item) -> bool:
    """`3栋楼` counts buildings; `第3栋楼`, `3栋` and `12栋楼道` name one."""
    if item[2] not in _COUNTED or item[3] or not text.startswith("楼", item[4]):
        return False
    return not text.startswith(_ONE_BUILDING, item[4])


def numbers_after(text: str, pos: int) -> tuple[NumberRange, ...]:
    """Every building/house number written at `pos` (right after a place mention), as ranges.

    A number without a building word of its own takes the next one's (`3、5号楼`); one with
    neither that nor the end of a phrase after it is not an address (`3个`, `5楼`).
    """
    m = _FIRST.match(text, pos)
    if m is None:
        return ()
    items: list[_Item] = []
    counted = False
    while m is not None and (item := _item(text, m)) is not None:
        if _counts_buildings(text, item):
            counted = True
            break
        items.append(item)
        m = _NEXT.match(text, item[4]) if text[item[4] : item[4] + 1] in _SEP_FIRST else None
    if counted or (items and not _closed(text, items[-1])):
        # no address, and neither are the numbers before it that share its word (3、5个)
        while items and items[-1][2] is None:
            items.pop()
    if len(items) == 1:
        return (_span(items[0][0], items[0][1]),)
    return tuple(_span(i[0], i[1]) for i in items)


def number_after(text: str, pos: int) -> int | None:
    """The one building/house number written at `pos`; None for none, several or a range."""
    nums = numbers_after(text, pos)
    if len(nums) != 1 or nums[0].lo != nums[0].hi:
        return None
    return nums[0].lo


def members(span: NumberRange, sided: bool) -> range | None:
    """The numbers a written range covers; None when it is too wide to mean a few buildings.

    Where a place is numbered by side (odd/even), `23-27号` means 23, 25 and 27.
    """
    if span.hi - span.lo > _WIDEST:
        return None
    step = 2 if sided and (span.hi - span.lo) % 2 == 0 else 1
    return range(span.lo, span.hi + 1, step)
