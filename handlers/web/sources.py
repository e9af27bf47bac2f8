"""Where a ticket came from, as the desk names it: the chat channels, 居民上报 (WeCom's resident
reports) and 当面代报 (filed by staff for a resident met face to face)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.notify.texts import t
from models.enums import Channel

SOURCES = tuple(c.value for c in Channel)  # desk.ch_* names each


def label(name: str) -> str:
    """In the service's language, as the desk's pages are."""
    return t(f"desk.ch_{name}") if name in SOURCES else name


def choices(seen: Iterable[str]) -> list[tuple[str, str]]:
    """Every known source, and any other channel a ticket in view came in on (a test's or a
    new channel's), as (value, label)."""
    extra = sorted(set(seen) - set(SOURCES) - {""})
    return [(c, label(c)) for c in (*SOURCES, *extra)]
