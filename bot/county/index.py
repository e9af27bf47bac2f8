"""The in-memory county: the Router, code <-> id maps and its calendar, rebuilt when an import
lands."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.store import county_version, load_calendar, load_county
from bot.notify.texts import scoped, stem
from bot.routing import Router
from bot.routing.normalize import normalize
from bot.tickets import sla
from models.county import Community, Grid


@dataclass(frozen=True, slots=True)
class GridInfo:
    id: int
    code: str
    name: str
    community_id: int
    community_code: str
    community_name: str


@dataclass(frozen=True, slots=True)
class CountyIndex:
    version: int
    router: Router
    grids: dict[str, GridInfo]
    grids_by_id: dict[int, GridInfo]
    communities: dict[str, tuple[int, str]]  # code -> (id, name)
    calendar: dict[date, bool] = field(default_factory=dict)  # holidays.yaml

    def label(self, grid_code: str | None) -> str:
        g = self.grids.get(grid_code or "")
        return f"{g.community_name}·{g.name}" if g else "—"

    def place_choice(self, grid_code: str, text: str) -> str:
        """A button for "where is it?": the places the resident named there, and the grid.

        Residents know their street, not the county's grid codes: 南关村（南关网格）.
        """
        g = self.grids.get(grid_code)
        if g is None:
            return "—"
        said = normalize(text)
        named: list[str] = []
        for p in sorted(self.router.places_of(grid_code), key=len, reverse=True):
            if normalize(p) in said and not any(p in longer for longer in named):
                named.append(p)  # 南关农贸市场, not also 南关
        grid = scoped(g.name, "网格")
        return f"{'、'.join(named[:2])}（{grid}）" if named \
            else f"{grid}（{scoped(g.community_name, '社区')}）"

    def grid_name(self, grid_id: int | None) -> str:
        g = self.grids_by_id.get(grid_id or 0)
        return stem(g.name, "网格") if g else "—"  # texts say {grid}网格


async def build_index(session: AsyncSession) -> CountyIndex:
    version = await county_version(session)
    router = Router.build(await load_county(session))
    comms = {c.id: c for c in (await session.scalars(select(Community))).all()}
    infos = [
        GridInfo(g.id, g.code, g.name, g.community_id, comms[g.community_id].code,
                 comms[g.community_id].name)
        for g in (await session.scalars(select(Grid).where(Grid.active.is_(True)))).all()
    ]
    return CountyIndex(
        version=version,
        router=router,
        grids={g.code: g for g in infos},
        grids_by_id={g.id: g for g in infos},
        communities={c.code: (c.id, c.name) for c in comms.values() if c.active},
        calendar=await load_calendar(session),
    )


class CountyHolder:
    """Keeps the current index; several instances notice another's import by its version."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker
        self._index: CountyIndex | None = None
        self._lock = asyncio.Lock()

    @property
    def index(self) -> CountyIndex:
        if self._index is None:
            raise RuntimeError("county index not loaded; call refresh() at start")
        return self._index

    async def refresh(self, force: bool = False) -> CountyIndex:
        async with self._lock:
            async with self._sm() as s:
                if (not force and self._index is not None
                        and await county_version(s) == self._index.version):
                    return self._index
                self._index = await build_index(s)
            sla.use_county_calendar(self._index.calendar)
            return self._index
