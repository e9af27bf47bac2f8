"""What importing a county directory would change: the files (files.load_county_dir) against
what the database holds now (store.load_county), counted per kind. Pure: no database.
The holidays, the call-back register and partner units are not compared (load_county does
not return them): the import's own report counts them.

Keys follow the import's own (store.py): communities and grids by code, places by (grid, name,
numbers), staff by phone, else by name within the grid. Rows the import would set inactive
count as deactivated; a row coming back from inactive counts as added (load_county returns
only active rows).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.county.files import CountyData, GridData


@dataclass(frozen=True, slots=True)
class Change:
    added: int = 0
    changed: int = 0
    deactivated: int = 0
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.deactivated)


@dataclass(frozen=True, slots=True)
class CountyDiff:
    communities: Change = field(default_factory=Change)
    grids: Change = field(default_factory=Change)
    staff: Change = field(default_factory=Change)
    places: Change = field(default_factory=Change)
    boundaries: Change = field(default_factory=Change)
    renamed: bool = False  # the county's own name

    def kinds(self) -> tuple[tuple[str, Change], ...]:
        return (("communities", self.communities), ("grids", self.grids),
                ("staff", self.staff), ("places", self.places), ("boundaries", self.boundaries))

    @property
    def any(self) -> bool:
        return self.renamed or any(c.any for _k, c in self.kinds())


def _compare(before: Mapping[Hashable, Any], after: Mapping[Hashable, Any]) -> Change:
    same = sum(1 for k, v in after.items() if k in before and before[k] == v)
    changed = sum(1 for k, v in after.items() if k in before and before[k] != v)
    return Change(added=sum(1 for k in after if k not in before), changed=changed,
                  deactivated=sum(1 for k in before if k not in after), unchanged=same)


def _public(extra: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if not k.startswith("_")}


def _staff(grids: Iterable[GridData]) -> dict[Hashable, tuple[str, frozenset[tuple[str, str]]]]:
    """person -> (name, their posts as (role, grid code))."""
    names: dict[Hashable, str] = {}
    posts: dict[Hashable, set[tuple[str, str]]] = {}
    for g in grids:
        members = [(w, "worker") for w in g.workers]
        if g.leader is not None:
            members.append((g.leader, "leader"))
        for person, role in members:
            key: Hashable = ("tel", person.phone) if person.phone \
                else ("name", g.code, person.name)
            names[key] = person.name
            posts.setdefault(key, set()).add((role, g.code))
    return {k: (names[k], frozenset(v)) for k, v in posts.items()}


def county_diff(now: CountyData, files: CountyData) -> CountyDiff:
    return CountyDiff(
        communities=_compare({c.code: (c.name, _public(c.extra)) for c in now.communities},
                             {c.code: (c.name, _public(c.extra)) for c in files.communities}),
        grids=_compare(
            {g.code: (g.name, g.community, tuple(g.micro_grids), _public(g.extra))
             for g in now.grids},
            {g.code: (g.name, g.community, tuple(g.micro_grids), _public(g.extra))
             for g in files.grids}),
        staff=_compare(_staff(now.grids), _staff(files.grids)),
        places=_compare(
            {(p.grid, p.name, p.numbers): (tuple(p.aliases), p.kind) for p in now.places},
            {(p.grid, p.name, p.numbers): (tuple(p.aliases), p.kind) for p in files.places}),
        boundaries=_compare({b.grid: (b.geometry, b.source_datum) for b in now.boundaries},
                            {b.grid: (b.geometry, b.source_datum) for b in files.boundaries}),
        renamed=bool(now.name) and now.name != files.name)
