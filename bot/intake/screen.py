"""Which reports of a batch open a ticket of their own.

- the same words from the same person within the repeat window fold into their first
  ticket (a "+1"), so 300 copies of one complaint are one ticket, one card, one deadline;
- past `per_minute` new tickets a minute from one person, the rest are held: kept as
  tickets in the community's unrouted queue, with no worker card and no deadline, so one
  flooding account cannot bury a grid's worker or its figures, and nothing they sent is lost;
- a report with no words, no photo and no place asks for the details instead.

Pure: the batch reads the recent tickets once and writes what this decides.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.intake.classify import clean_text
from bot.intake.phones import hide
from bot.messages import Inbound
from bot.routing.normalize import normalize


@dataclass(frozen=True, slots=True)
class Recent:
    """A ticket the same person opened lately."""

    id: int
    number: str
    reporter: str
    key: str
    created_at: datetime
    held: bool


@dataclass(slots=True)
class Screen:
    opens: list[int] = field(default_factory=list)  # batch indexes that open a ticket
    held: set[int] = field(default_factory=set)  # of those, the ones held for the community
    folded: dict[int, Recent] = field(default_factory=dict)  # index -> the ticket it joins
    empty: set[int] = field(default_factory=set)  # nothing to act on: ask for details


PLACEHOLDERS = frozenset({"[图片]", "[位置]"})  # what a ticket's text is when none was sent


def stored_key(text: str) -> str:
    """A ticket's words without spacing, punctuation, symbols or script differences."""
    if text in PLACEHOLDERS:
        return ""
    return "".join(ch for ch in normalize(text) if unicodedata.category(ch)[0] not in "PSZC")


def repeat_key(raw: str) -> str:
    """`stored_key` of what a message would be stored as (phone numbers hidden, too)."""
    return stored_key(hide(clean_text(raw))[0])


def screen(
    reports: dict[int, Inbound], recent: list[Recent], has_earlier: set[int], now: datetime,
    *, repeat_window: timedelta, per_minute: int,
) -> Screen:
    out = Screen()
    seen: dict[tuple[str, str], Recent] = {}
    opened: dict[str, list[datetime]] = {}
    for r in recent:
        if r.created_at >= now - repeat_window:
            seen.setdefault((r.reporter, r.key), r)
        if r.created_at >= now - timedelta(minutes=1) and not r.held:
            opened.setdefault(r.reporter, []).append(r.created_at)
    for i, ib in reports.items():
        key = repeat_key(ib.text)
        if not key and not ib.media and ib.location is None and i not in has_earlier:
            out.empty.add(i)
            continue
        first = seen.get((ib.sender_id, key)) if key else None
        if first is not None and not ib.media:
            out.folded[i] = first
            continue
        out.opens.append(i)
        mine = opened.setdefault(ib.sender_id, [])
        if len(mine) >= per_minute:
            out.held.add(i)
        else:
            mine.append(now)
        if key:
            # later copies in this batch fold into this one (its id is known after the insert)
            seen.setdefault((ib.sender_id, key), Recent(-1 - i, "", ib.sender_id, key, now,
                                                        i in out.held))
    return out
