"""Which grid a report belongs to, from the place it names, a shared location, or the chat.

Pure and in-memory: built once from `CountyData`, then `route()` does no I/O.

Rules, in the order they apply (a confident wrong grid is worse than a question):

1. Places named in the text (longest name wins over a shorter name or alias inside it).
   A place split between grids by number is resolved by the number written right after it
   (`府前街23号`, `锦绣花园3号楼`, `锦绣花园12栋`; see `numbers` for what counts); with no
   number, or a number outside every range, all of its grids become candidates. Several
   numbers written there (`3号楼和12号楼`, `3、5号楼`) or a range (`3-8号楼`, `3至8号楼`)
   give the grids of every one of them, never the first one's alone: all in one grid routes
   there, in several grids is a question. A range whose ends are both odd or both even, on a
   place with odd/even rows, covers that side only (`府前街23-27号`); one spanning more than
   1,000 numbers covers the whole place. The same place named again: the numbers at every
   mention count together, and a mention without one does not widen them. Two different
   places pointing to different grids give the union as candidates: we do not guess which
   one the resident meant.
   a. A name that is part of a longer name of another place (南关 in 南关新村, 西关 in
      西关菜市场; marked when the index is built, also where only the sound is part of the
      longer name's) is looked up by sound as well: the text around it may be the longer
      name written with the wrong characters (南关心村 for 南关新村, 西关才市场 for 西关菜市场).
      Here a wrong character in the trailing place word counts (unlike rule 5): the stem is
      a place name either way, and the question is only which place. If such a longer name
      covers the short one and has a grid the short one has not (with a number narrowing
      each as above), the two count as two places: the union as candidates, for the rules
      below (a location may still settle it; the chat never does), and `matched` shows both:
      `南关`, `南关心村≈南关新村`. A longer name whose grids are all the short name's own
      (南关存 for 南关村, FN-02 like 南关) changes nothing. Only a message that names such a
      short name pays for the look-up.
2. A shared location (GCJ-02 converted to WGS-84 first) that falls in one of the candidate
   grids decides between them, and confirms a single one. A location in a grid the named
   places do not include is a conflict: ambiguous, with the places' grids and the location's
   grid as candidates. A location outside every grid says nothing about a named place.
3. The chat's bound grid decides only between the candidates of one named place (a compound
   split between two grids, mentioned in the group of one of them); it never overrides a
   place that resolved to another grid, nor chooses between two different places, nor once
   a number written after the place is in one of its rows (`锦绣花园3号楼和12号楼`, and
   `锦绣花园3号楼和20号楼` with 20 in no row): the resident named those grids.
4. No place named: the location's grid; a location outside every grid is unknown (even in
   a bound chat: the resident told us where it is, and it is not ours). No place and no
   location: the chat's bound grid, else unknown.
5. No place named, but one sounds like a place name written with the wrong characters
   (南光村 for 南关村, 锦秀花园 for 锦绣花园; see `phonetic` for what counts as a hit). A
   homophone is a guess, so it never routes on its own; it can only turn what rule 4 would
   say into a question. Its candidates are the grids of the places it sounds like (numbers
   right after it narrow a split place as in rule 1; otherwise all of the place's grids).
   - Rule 4 routes by the location (alone, or the chat choosing on a shared edge) to a grid
     among the candidates: routed there -- the location routes, the name only agrees.
   - No location, and the chat's bound grid is the only candidate: routed to it (what rule
     4 gives anyway).
   - Anything else is ambiguous: the candidates, plus the location's grids (a location in
     another grid is a conflict, as in rule 2), or with no location the chat's bound grid.
     A location outside every grid adds nothing and does not make it unknown.
   `matched` shows the name as written and what it was taken for: `南光村≈南关村`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.notify.texts import scoped
from bot.routing.datum import to_wgs84
from bot.routing.gazetteer import Gazetteer, Mention
from bot.routing.geometry import GridGeometry
from bot.routing.normalize import normalize
from bot.routing.numbers import NumberRange, members, numbers_after
from bot.routing.phonetic import PhoneticIndex
from models.enums import RouteStatus

if TYPE_CHECKING:
    from bot.county.files import CountyData, PlaceRow
    from bot.messages import GeoPoint

LOCATION = "location"
CHAT = "chat"


@dataclass(frozen=True)
class RouteResult:
    status: RouteStatus
    grid: str | None
    candidates: list[str]
    matched: list[str]


@dataclass(frozen=True, slots=True)
class _Grid:
    code: str
    name: str
    community: str
    community_name: str
    order: int


@dataclass(slots=True, eq=False)  # identity hash: one object per place
class _Place:
    """A place split between grids; a place wholly in one grid is just its grid code."""

    name: str
    grids: tuple[str, ...]  # every grid holding some part of the place
    ranged: list[tuple[str, tuple[NumberRange, ...]]]
    whole: tuple[str, ...]  # grids of rows without numbers: the rest of the place
    sided: bool  # some rows are one side of the street (odd or even numbers)

    def resolve(self, numbers: tuple[NumberRange, ...]) -> tuple[tuple[str, ...], bool]:
        """The grids holding any of the numbers written after the place (all without one), and
        whether one of them is in the place's rows: then the text itself drew the grids."""
        if not numbers:
            return self.grids, False
        if len(numbers) == 1 and numbers[0].lo == numbers[0].hi:  # the usual case, kept quick
            held = self._holding(numbers[0].lo)
            return held or self.grids, bool(held)
        out: list[str] = []
        drawn = False
        for span in numbers:
            each = members(span, self.sided)
            if each is None:
                return self.grids, True
            for n in each:
                held = self._holding(n)
                drawn = drawn or bool(held)
                out.extend(g for g in held or self.grids if g not in out)
                if drawn and len(out) == len(self.grids):
                    return self.grids, True
        return tuple(out), drawn

    def _holding(self, n: int) -> tuple[str, ...]:
        """The grids of the rows holding number n; without one, the rest of the place's."""
        hits: list[str] = []
        for grid, ranges in self.ranged:
            if grid not in hits and any(r.contains(n) for r in ranges):
                hits.append(grid)
        return tuple(hits) or self.whole


def _target(rows: list[PlaceRow], grids: dict[str, _Grid]) -> str | _Place:
    codes = list(dict.fromkeys(r.grid for r in rows))
    if len(codes) == 1:
        return grids[codes[0]].code  # the dict's own string: one object per grid
    ranged = [(r.grid, r.ranges) for r in rows if r.ranges]
    whole = tuple(dict.fromkeys(r.grid for r in rows if not r.ranges))
    sided = any(r.parity for _, ranges in ranged for r in ranges)
    return _Place(rows[0].name, tuple(codes), ranged, whole, sided)


class Router:
    def __init__(
        self,
        grids: dict[str, _Grid],
        gazetteer: Gazetteer,
        geometry: GridGeometry,
        places_of: dict[str, list[str]],
        phonetic: PhoneticIndex,
    ) -> None:
        self._grids = grids
        self._gaz = gazetteer
        self._phon = phonetic
        self._geo = geometry
        self._places_of = places_of
        self._neighbours: dict[str, list[str]] = {}

    @classmethod
    def build(cls, county: CountyData) -> Router:
        names = {c.code: c.name for c in county.communities}
        grids = {
            g.code: _Grid(g.code, g.name, g.community, names.get(g.community, g.community), i)
            for i, g in enumerate(county.grids)
        }
        groups: dict[str, list[PlaceRow]] = {}
        for row in county.places:
            if row.grid in grids:
                groups.setdefault(normalize(row.name), []).append(row)
        gaz = Gazetteer()
        places_of: dict[str, list[str]] = {}
        for key, rows in groups.items():
            target = _target(rows, grids)
            gaz.add(rows[0].name, target, key)
            for row in rows:
                for alias in row.aliases:
                    gaz.add(alias, target)
            for code in dict.fromkeys(r.grid for r in rows):
                places_of.setdefault(code, []).append(rows[0].name)
        del groups
        phon = PhoneticIndex(gaz, gaz.keys())  # reads the keys, so before the build
        gaz.build()
        geo = GridGeometry({b.grid: b.geometry for b in county.boundaries if b.grid in grids})
        return cls(grids, gaz, geo, places_of, phon)

    # --- routing ----------------------------------------------------------------------

    def _ordered(self, codes: set[str] | list[str] | tuple[str, ...]) -> list[str]:
        return sorted(set(codes), key=lambda c: self._grids[c].order)

    def _resolve(self, text: str, m: Mention) -> tuple[tuple[str, ...], bool, bool]:
        """The grids a mention names; whether a number written after it is in a split place's
        rows (see `_Place.resolve`); whether any number is written after it."""
        if len(m.targets) == 1:
            t = m.targets[0]
            if isinstance(t, str):
                return (t,), False, False
            numbers = numbers_after(text, m.end)
            return (*t.resolve(numbers), bool(numbers))  # type: ignore[attr-defined]
        out: list[str] = []
        numbers = numbers_after(text, m.end)
        drawn = False
        for t in m.targets:
            if isinstance(t, str):
                grids: tuple[str, ...] = (t,)
            else:
                grids, held = t.resolve(numbers)  # type: ignore[attr-defined]
                drawn = drawn or held
            out.extend(g for g in grids if g not in out)
        return tuple(out), drawn, bool(numbers)

    def route(
        self, text: str, chat_grid: str | None = None, location: GeoPoint | None = None
    ) -> RouteResult:
        if chat_grid is not None and chat_grid not in self._grids:
            chat_grid = None
        here: list[str] | None = None
        if location is not None:
            lat, lon = to_wgs84(location.lat, location.lon, location.datum)
            here = self._geo.locate(lat, lon)

        norm = normalize(text) if text else ""
        mentions = self._gaz.find(norm) if norm else []
        if not mentions:
            fuzzy = self._phon.find(norm) if norm else []
            if fuzzy:
                return self._by_sound(norm, fuzzy, chat_grid, here)
            return self._without_place(chat_grid, here)

        if any(m.shadowed for m in mentions):
            mentions = self._contested(norm, mentions)
        labels, sets, drawn = self._candidates(norm, mentions)
        cands: set[str] = set()
        for grids in sets.values():
            cands.update(grids)

        if here:
            inter = cands.intersection(here)
            if len(inter) == 1:
                return _routed(next(iter(inter)), [*labels, LOCATION])
            if not inter:
                return _ambiguous(self._ordered(cands | set(here)), [*labels, LOCATION])
            cands = inter
        if len(cands) == 1:
            return _routed(next(iter(cands)), labels)
        if chat_grid in cands and len(sets) == 1 and not drawn:
            return _routed(chat_grid, [*labels, CHAT])
        return _ambiguous(self._ordered(cands), labels)

    def _candidates(
        self, norm: str, mentions: list[Mention]
    ) -> tuple[list[str], dict[tuple[object, ...], tuple[str, ...]], bool]:
        """Labels in text order, the grids of each place mentioned, and whether the numbers
        written drew a place's grids (then the chat does not choose among them)."""
        labels: list[str] = []
        sets: dict[tuple[object, ...], tuple[str, ...]] = {}
        numbered: set[tuple[object, ...]] = set()
        drawn = False
        for m in mentions:
            if m.label not in labels:
                labels.append(m.label)
            grids, held, narrowed = self._resolve(norm, m)
            drawn = drawn or held
            prev = sets.get(m.targets)
            # the same place twice: a number given at any mention narrows it, and the numbers
            # of several mentions count together
            if prev is None or (narrowed and m.targets not in numbered):
                sets[m.targets] = grids
            elif narrowed:
                sets[m.targets] = (*prev, *(g for g in grids if g not in prev))
            if narrowed:
                numbered.add(m.targets)
        return labels, sets, drawn

    def _contested(self, norm: str, mentions: list[Mention]) -> list[Mention]:
        """Rule 1a: after each shadowed name, the longer names of other grids it may be part of.

        南关心村 holds 南关 exactly and sounds like 南关新村: the resident may mean either, so
        both are kept, as two places. A longer name whose grids are all the shorter name's
        own (南关存 for 南关村, both FN-02) changes nothing and is left out.
        """
        spans = [(m.start, m.end) for m in mentions if m.shadowed]
        rivals = self._phon.covering(norm, spans)
        if not rivals:
            return mentions
        out: list[Mention] = []
        for m in mentions:
            out.append(m)
            if not m.shadowed:
                continue
            own: set[str] | None = None
            for r in rivals:
                if r.start <= m.start and m.end <= r.end:
                    if own is None:
                        own = set(self._resolve(norm, m)[0])
                    if not own.issuperset(self._resolve(norm, r)[0]):
                        out.append(r)
        return out

    def _by_sound(
        self, norm: str, fuzzy: list[Mention], chat_grid: str | None, here: list[str] | None
    ) -> RouteResult:
        """Rule 5: a homophone of a place name turns rule 4's answer into a question."""
        labels, sets, _drawn = self._candidates(norm, fuzzy)
        cands: set[str] = set()
        for grids in sets.values():
            cands.update(grids)
        base = self._without_place(chat_grid, here)
        if base.status is RouteStatus.ROUTED and base.grid in cands:
            if LOCATION in base.matched:
                return _routed(base.grid, [*labels, *base.matched])
            if len(cands) == 1:  # the chat's grid, and nothing else it could be
                return _routed(base.grid, [*labels, CHAT])
        if here:
            return _ambiguous(self._ordered(cands | set(here)), [*labels, LOCATION])
        if here is None and chat_grid is not None:
            return _ambiguous(self._ordered(cands | {chat_grid}), [*labels, CHAT])
        return _ambiguous(self._ordered(cands), labels)

    def _without_place(self, chat_grid: str | None, here: list[str] | None) -> RouteResult:
        if here is not None:
            if len(here) == 1:
                return _routed(here[0], [LOCATION])
            if not here:
                return RouteResult(RouteStatus.UNKNOWN, None, [], [])
            if chat_grid in here:
                return _routed(chat_grid, [LOCATION, CHAT])
            return _ambiguous(self._ordered(here), [LOCATION])
        if chat_grid is not None:
            return _routed(chat_grid, [CHAT])
        return RouteResult(RouteStatus.UNKNOWN, None, [], [])

    # --- display helpers --------------------------------------------------------------

    @property
    def grid_codes(self) -> list[str]:
        return list(self._grids)

    def has_grid(self, code: str) -> bool:
        return code in self._grids

    def grid_name(self, code: str) -> str:
        g = self._grids.get(code)
        return g.name if g else code

    def grid_community(self, code: str) -> str:
        """The community's name (e.g. 府南)."""
        g = self._grids.get(code)
        return g.community_name if g else ""

    def community_code(self, code: str) -> str:
        g = self._grids.get(code)
        return g.community if g else ""

    def places_of(self, grid_code: str) -> list[str]:
        return list(self._places_of.get(grid_code, []))

    def candidate_label(self, grid_code: str) -> str:
        g = self._grids.get(grid_code)
        if g is None:
            return grid_code
        return f"{scoped(g.community_name, '社区')}·{scoped(g.name, '网格')}"

    def neighbours(self, grid_code: str) -> list[str]:
        """Grids whose boundaries touch or nearly touch; without a boundary, the community's."""
        cached = self._neighbours.get(grid_code)
        if cached is not None:
            return list(cached)
        g = self._grids.get(grid_code)
        if g is None:
            return []
        if grid_code in self._geo:
            near = [c for c in self._geo.touching(grid_code) if c in self._grids]
        else:
            near = [c for c, o in self._grids.items() if o.community == g.community]
        out = sorted(
            (c for c in near if c != grid_code),
            key=lambda c: (self._grids[c].community != g.community, self._grids[c].order),
        )
        self._neighbours[grid_code] = out
        return list(out)


def _routed(grid: str, matched: list[str]) -> RouteResult:
    return RouteResult(RouteStatus.ROUTED, grid, [], matched)


def _ambiguous(cands: list[str], matched: list[str]) -> RouteResult:
    return RouteResult(RouteStatus.AMBIGUOUS, None, cands, matched)
