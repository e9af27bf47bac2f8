"""The map: the county's grid boundaries and open tickets as points.

Coordinates go out in the datum the tiles use: MAP_TILE_DATUM (GCJ-02 for most Chinese tiles,
WGS-84 for 天地图) when MAP_TILE_URL is set; WGS-84 on the plain background, which has no datum
of its own to match.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import Select, select

from bot.county.index import CountyIndex
from bot.routing.datum import to_wgs84, wgs84_to_gcj02
from config.settings import Settings
from handlers.web.context import DESK_KEY, current
from handlers.web.staff import Staff
from models.county import Boundary, Grid
from models.enums import OPEN_STATES
from models.tickets import Ticket

MAX_POINTS = 5000  # the newest open tickets; a county rarely has more open at once


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/map", map_page)
    desk.router.add_get("/map/data", map_data)


async def map_page(request: web.Request) -> web.StreamResponse:
    await current(request)
    return aiohttp_jinja2.render_template("map.html", request, {})


def tiles_in_gcj02(settings: Settings) -> bool:
    return bool(settings.map_tile_url) and settings.map_tile_datum == "gcj02"


def _shift(coords: Any, datum: str, gcj: bool) -> Any:
    """A GeoJSON coordinate array, every [lon, lat] moved into the display datum."""
    if coords and isinstance(coords[0], int | float):
        lat, lon = to_wgs84(float(coords[1]), float(coords[0]), datum)
        if gcj:
            lat, lon = wgs84_to_gcj02(lat, lon)
        return [round(lon, 7), round(lat, 7)]
    return [_shift(c, datum, gcj) for c in coords]


def grid_feature(idx: CountyIndex, staff: Staff, geometry: dict[str, Any], grid_id: int,
                 gcj: bool) -> dict[str, Any]:
    """A grid's boundary: stored in WGS-84 whatever its file's datum was (Boundary)."""
    g = idx.grids_by_id.get(grid_id)
    mine = staff.centre or grid_id in staff.grid_ids or (
        g is not None and g.community_id in staff.community_ids)
    return {"type": "Feature", "properties": {
        "grid": g.code if g else "", "name": idx.label(g.code) if g else "", "mine": mine},
        "geometry": {"type": geometry["type"],
                     "coordinates": _shift(geometry["coordinates"], "wgs84", gcj)}}


def point(tid: int, number: str, state: str, lat: float, lon: float, datum: str | None,
          age_hours: int, gcj: bool) -> dict[str, Any]:
    if gcj or datum not in (None, "wgs84"):
        lon, lat = _shift([lon, lat], datum or "wgs84", gcj)
    return {"id": tid, "number": number, "state": state, "lon": lon, "lat": lat,
            "age_hours": age_hours}


def _boundaries() -> Select:  # bare: its type arity differs in SQLAlchemy 2.0 and 2.1
    return (select(Boundary.geometry, Grid.id)
            .join(Grid, Grid.id == Boundary.grid_id)
            .where(Boundary.active.is_(True), Grid.active.is_(True)))


async def map_data(request: web.Request) -> web.StreamResponse:
    staff = await current(request)
    state = request.app[DESK_KEY]
    gcj = tiles_in_gcj02(state.settings)
    idx = state.app.deps.county.index
    async with state.app.deps.reader()() as s:
        bounds = (await s.execute(_boundaries())).all()
        points = (await s.execute(
            select(Ticket.id, Ticket.number, Ticket.state, Ticket.lat, Ticket.lon, Ticket.datum,
                   Ticket.created_at)
            .where(staff.sees(), Ticket.state.in_(list(OPEN_STATES)), Ticket.lat.is_not(None),
                   Ticket.lon.is_not(None))
            .order_by(Ticket.id.desc()).limit(MAX_POINTS))).all()
    now = state.app.deps.clock()
    return web.json_response({
        "type": "FeatureCollection",
        "features": [grid_feature(idx, staff, g, gid, gcj) for g, gid in bounds],
        "tickets": [point(tid, number, st, lat, lon, datum,
                          int((now - created).total_seconds() // 3600), gcj)
                    for tid, number, st, lat, lon, datum, created in points
                    if lat is not None and lon is not None],
        "tiles": state.settings.map_tile_url})


async def ticket_map(request: web.Request, staff: Staff, ticket: Ticket) -> web.StreamResponse:
    """One ticket's place: its grid's boundary and, when it was shared, its point."""
    state = request.app[DESK_KEY]
    gcj = tiles_in_gcj02(state.settings)
    idx = state.app.deps.county.index
    async with state.app.deps.reader()() as s:
        # no grid yet: Grid.id == None matches nothing
        bounds = (await s.execute(_boundaries().where(Grid.id == ticket.grid_id))).all()
    now = state.app.deps.clock()
    points = [] if ticket.lat is None or ticket.lon is None else [point(
        ticket.id, ticket.number, ticket.state, ticket.lat, ticket.lon, ticket.datum,
        int((now - ticket.created_at).total_seconds() // 3600), gcj)]
    return web.json_response({
        "type": "FeatureCollection",
        "features": [grid_feature(idx, staff, g, gid, gcj) for g, gid in bounds],
        "tickets": points, "tiles": state.settings.map_tile_url})
