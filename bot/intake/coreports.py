"""Co-reports (附议): a new report of a problem already open at the same place follows that
ticket instead of opening a second one for the same worker.

Same place means the same grid and category and either the same place label (building
number included) or, when both have a shared location, within `radius_m`; the same problem
means the two share a word of the category lexicon (路灯, 垃圾 …): a street light and a drain
in one village are both 市政设施 but two problems. Category 其他 never links: "other" says
nothing about being the same problem. Reports the flood limit held are left alone, and so is
a person's own earlier ticket (their second report is theirs to make; the same words twice
already fold as a repeat). The earliest open ticket at the place leads; reports of one batch
can follow one another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select

from bot.intake.category import subjects
from bot.routing.datum import gcj02_to_wgs84
from bot.tickets.lifecycle import MIRRORED
from models.enums import OPEN_STATES, Category
from models.enums import TicketState as S
from models.tickets import NewTicket, Ticket

# a shared location is searched for this far around (degrees), beyond the radius itself: the
# GCJ-02 offset is a few hundred metres and points are compared after conversion
_MARGIN_DEG = 0.01

# an open ticket follows nothing (a co-report is in state merged). SQLite keeps no statistics:
# `state || ''` keeps it off ix_tickets_state (most tickets are open), which it otherwise read
# whole, per batch, under the write lock; the grid's indexes below find the few candidates
_OPEN = (
    select(Ticket.id, Ticket.number, Ticket.grid_id, Ticket.category, Ticket.place_text,
           Ticket.lat, Ticket.lon, Ticket.datum, Ticket.channel, Ticket.reporter_user_id,
           Ticket.text)
    .where(Ticket.category.in_(bindparam("categories", expanding=True)),
           (Ticket.state + "").in_([s.value for s in OPEN_STATES]),
           Ticket.channel.not_in(list(MIRRORED))))


def _at_places(pairs: list[tuple[int, str]]) -> Any:
    """Each (grid, place) looked up by ix_tickets_grid_place: as grids IN and places IN, a
    batch of 30 reports probed the index 750 times; a row-value IN, SQLite scans."""
    return _OPEN.where(or_(*(and_(Ticket.grid_id == g, Ticket.place_text == p)
                             for g, p in pairs)))

_NEAR = (_OPEN.where(Ticket.grid_id.in_(bindparam("grids", expanding=True)),
                     Ticket.lat.between(bindparam("lat_lo"), bindparam("lat_hi")),
                     Ticket.lon.between(bindparam("lon_lo"), bindparam("lon_hi"))))
_ASSIGNEES = select(Ticket.id, Ticket.assignee_id).where(
    Ticket.id.in_(bindparam("ids", expanding=True)))
_FOLLOWERS = (select(Ticket.merged_into_id, func.count())
              .where(Ticket.merged_into_id.in_(bindparam("ids", expanding=True)),
                     Ticket.state == S.MERGED.value)
              .group_by(Ticket.merged_into_id))


@dataclass(frozen=True, slots=True)
class Lead:
    """An open ticket a new report can follow; `id` < 0 is batch index -1 - id, not inserted
    yet."""

    id: int
    number: str
    grid_id: int
    category: str
    place: str  # the place label, as stored
    point: tuple[float, float] | None  # WGS-84
    reporter: tuple[str, str]  # channel, user id
    about: frozenset[str]  # category.subjects of its words


def wgs84(lat: float | None, lon: float | None, datum: str | None
          ) -> tuple[float, float] | None:
    if lat is None or lon is None:
        return None
    return gcj02_to_wgs84(lat, lon) if datum == "gcj02" else (lat, lon)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance; at a few hundred metres the sphere is exact enough."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 \
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def linkable(tk: NewTicket) -> bool:
    return tk.grid_id is not None and not tk.unrouted and tk.category != Category.OTHER.value


def open_leads(conn: Connection, tickets: list[NewTicket], radius_m: int) -> list[Lead]:
    """The open tickets any of these new ones could follow, oldest first."""
    candidates = [tk for tk in tickets if linkable(tk)]
    if not candidates:
        return []
    categories = list({tk.category for tk in candidates})
    rows: dict[int, Any] = {}
    pairs = list({(tk.grid_id or 0, tk.place_text) for tk in candidates if tk.place_text})
    if pairs:
        rows.update((r[0], r) for r in conn.execute(_at_places(pairs),
                                                    {"categories": categories}))
    lats = [tk.lat for tk in candidates if tk.lat is not None and tk.lon is not None]
    lons = [tk.lon for tk in candidates if tk.lat is not None and tk.lon is not None]
    if lats and lons:
        margin = _MARGIN_DEG + radius_m / 111_000
        rows.update((r[0], r) for r in conn.execute(_NEAR, {
            "categories": categories, "grids": list({tk.grid_id for tk in candidates}),
            "lat_lo": min(lats) - margin, "lat_hi": max(lats) + margin,
            "lon_lo": min(lons) - margin, "lon_hi": max(lons) + margin}))
    return [Lead(tid, number, grid or 0, cat, place, wgs84(lat, lon, datum),
                 (channel, user), subjects(text))
            for tid, number, grid, cat, place, lat, lon, datum, channel, user, text
            in (rows[k] for k in sorted(rows))]


def lead_for(tk: NewTicket, leads: list[Lead], radius_m: int) -> Lead | None:
    """The ticket `tk` follows: the earliest at the same place label, else the nearest point."""
    if not linkable(tk):
        return None
    same = [ld for ld in leads if ld.grid_id == tk.grid_id and ld.category == tk.category
            and ld.reporter != (tk.channel, tk.reporter_user_id)]
    if not same:
        return None  # the common case: nothing open here, and no words need reading
    about = subjects(tk.text)
    same = [ld for ld in same if ld.about & about]
    if tk.place_text:
        # place labels come from the gazetteer's own names (and a building number), so
        # equal labels are equal text; the lookup matched them so in SQL
        for ld in same:
            if ld.place == tk.place_text:
                return ld
    here = wgs84(tk.lat, tk.lon, tk.datum)
    if here is None:
        return None
    near = [(metres(here, ld.point), ld.id, ld) for ld in same if ld.point is not None]
    near = [n for n in near if n[0] <= radius_m]
    return min(near, key=lambda n: (n[0], n[1]))[2] if near else None


def as_lead(i: int, tk: NewTicket) -> Lead:
    """A ticket of this batch that later reports of the same batch can follow."""
    assert tk.grid_id is not None
    return Lead(-1 - i, tk.number, tk.grid_id, tk.category, tk.place_text,
                wgs84(tk.lat, tk.lon, tk.datum), (tk.channel, tk.reporter_user_id),
                subjects(tk.text))


def assignees(conn: Connection, ids: list[int]) -> dict[int, int | None]:
    return {tid: who for tid, who in conn.execute(_ASSIGNEES, {"ids": ids})} if ids else {}


def followers(conn: Connection, ids: list[int]) -> dict[int, int]:
    """How many co-reports each of these tickets has now."""
    if not ids:
        return {}
    return {tid: n for tid, n in conn.execute(_FOLLOWERS, {"ids": ids}) if tid is not None}
