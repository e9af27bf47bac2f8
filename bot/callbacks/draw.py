"""The weekly draw, pure: who is called, from plain data, the same for the same week.

Each community draws with its own generator seeded from the week, the county and the
community, so one community's households never change another's sample. The number of calls
is drawn between the configured minimum and maximum. Households not reached last week are all
drawn again; the rest are taken one grid at a time in a shuffled order of grids (stratified:
no grid gets a second call before every grid with someone left has had one). Residents whose
tickets closed that week come before the register: their grids first in each round, and
within a grid before its register households.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from operator import attrgetter

from bot.callbacks.week import Week


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str  # the household (CallbackHousehold.key)
    community: str  # community code
    grid: str  # grid code
    ticket: int | None = None  # the closed ticket this household is drawn for, if any


@dataclass(frozen=True, slots=True)
class Quota:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.high:
            raise ValueError("CALLBACK_PER_COMMUNITY_MIN 应大于 0 且不大于 "
                             f"CALLBACK_PER_COMMUNITY_MAX，现在是 {self.low} 和 {self.high}")


def draw(week: Week, county: str, candidates: Iterable[Candidate], quota: Quota,
         cooling: Set[str] = frozenset(),
         carried: Sequence[Candidate] = ()) -> list[Candidate]:
    """The sample for `week`: per community (in code order), carried households first.

    `cooling`: households called within the cooldown (never drawn); `carried`: last week's
    unreached calls, drawn again whatever the cooldown says (they were not called)."""
    pool: dict[str, dict[str, list[Candidate]]] = {}
    for c in _one_per_household(candidates):
        pool.setdefault(c.community, {}).setdefault(c.grid, []).append(c)
    again: dict[str, list[Candidate]] = {}
    for c in sorted(carried, key=lambda c: c.key):
        again.setdefault(c.community, []).append(c)
    out: list[Candidate] = []
    for community in sorted(pool.keys() | again.keys()):
        rng = random.Random(f"{week}:{county}:{community}")
        n = rng.randint(quota.low, quota.high)
        chosen = again.get(community, [])
        taken = {c.key for c in chosen}
        out += chosen
        out += _stratified(rng, pool.get(community, {}), n - len(chosen),
                           skip=cooling | taken if taken else cooling)
    return out


def _one_per_household(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per household: its latest ticket when it has several (sorted input in,
    so the generator sees the same list whatever order the database returned)."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        have = best.get(c.key)
        if have is None or (c.ticket or 0) > (have.ticket or 0):
            best[c.key] = c
    return sorted(best.values(), key=attrgetter("key"))


def _stratified(rng: random.Random, by_grid: dict[str, list[Candidate]], n: int,
                skip: Set[str]) -> list[Candidate]:
    # (ticket residents, register) per grid, each in the canonical order _one_per_household
    # gave; members are picked at random as needed, not shuffled whole: the draw stays fast on
    # a county of tens of thousands of households
    with_tickets: list[tuple[list[Candidate], list[Candidate]]] = []
    register_only: list[tuple[list[Candidate], list[Candidate]]] = []
    for grid in sorted(by_grid):
        members = by_grid[grid]
        tickets = [c for c in members if c.ticket is not None]
        pools = (tickets, [c for c in members if c.ticket is None])
        (with_tickets if tickets else register_only).append(pools)
    rng.shuffle(with_tickets)
    rng.shuffle(register_only)
    turns = with_tickets + register_only
    out: list[Candidate] = []
    while len(out) < n and turns:
        for pools in list(turns):
            if len(out) == n:
                break
            picked = _take(rng, pools[0], skip) or _take(rng, pools[1], skip)
            if picked is None:
                turns.remove(pools)
            else:
                out.append(picked)
    return out


def _take(rng: random.Random, pool: list[Candidate], skip: Set[str]) -> Candidate | None:
    """A random member not in `skip`, removed from `pool`; None when none is left."""
    while pool:
        i = rng.randrange(len(pool))
        pool[i], pool[-1] = pool[-1], pool[i]
        c = pool.pop()
        if c.key not in skip:
            return c
    return None
