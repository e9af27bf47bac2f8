"""House and building numbers: the `numbers` column of places.csv and numbers in messages.

A spec is `;`-separated items, each `A-B` or `A`, optionally followed by ` odd` or ` even`
(`单`/`双` are accepted too): `1-4`, `1-199 odd`, `7; 9-12`.

In a message, only a number written right after a place mention counts as its address
(`府前街23号`, `锦绣花园3号楼`, `锦绣花园的第三栋`, `锦绣花园9-2-301`), so counts such as
`有3个路灯坏了`, `3栋楼之间` or floors (`5楼`, `3单元`) never decide a grid.
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
_FILLER = r"(?:小区|家属院|院内|院里|院|的|上|东区|西区|南区|北区)"
# number right after a place: digits or Chinese numerals (两 is left out: "两栋楼" is a count)
_AFTER = re.compile(
    rf"{_FILLER}{{0,2}}(第?)([0-9]+|[{_CN_DIGITS}]+)"
    r"(号楼|号院|号门|号|栋|幢|座|#|(?=-[0-9])|(?=$|[,.;:!?、。)\]\s]))"
)


@lru_cache(maxsize=4096)
def cn_to_int(s: str) -> int | None:
    if s.isdigit():
        return int(s)
    try:
        v = cn2an.cn2an(s, "smart")
    except (ValueError, KeyError, TypeError):
        return None
    return int(v) if float(v).is_integer() else None


def number_after(text: str, pos: int) -> int | None:
    """The building/house number written at `pos` (right after a place mention), if any."""
    m = _AFTER.match(text, pos)
    if m is None:
        return None
    ordinal, num, suffix = m.groups()
    # "3栋楼" counts buildings; "第3栋楼" and "3栋" name one
    if suffix in ("栋", "幢") and not ordinal and text.startswith("楼", m.end()):
        return None
    return cn_to_int(num)
