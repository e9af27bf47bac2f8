"""`run_bot.py import DIR` and `run_bot.py route --jsonl`, as plain async functions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TextIO

from bot.county.files import load_county_dir
from bot.county.store import ImportReport, import_county, load_county
from bot.messages import GeoPoint
from bot.routing.router import Router, RouteResult
from models import db


async def import_dir(database_url: str, directory: Path) -> ImportReport:
    """Validate the whole directory first (CountyFileError names every problem), then import
    it in one transaction."""
    data = load_county_dir(directory)
    await db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        async with db.make_sessionmaker(engine)() as session, session.begin():
            return await import_county(session, data)
    finally:
        await engine.dispose()


async def load_router(database_url: str) -> Router:
    await db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        async with db.make_sessionmaker(engine)() as session:
            county = await load_county(session)
    finally:
        await engine.dispose()
    return Router.build(county)


def _point(obj: dict[str, Any]) -> GeoPoint | None:
    lat, lon = obj.get("lat"), obj.get("lon")
    if lat is None and lon is None:
        return None
    if isinstance(lat, bool) or isinstance(lon, bool):
        raise ValueError("lat and lon must be numbers")
    lat_f, lon_f = float(lat), float(lon)  # type: ignore[arg-type]
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)) or abs(lat_f) > 90 or abs(lon_f) > 180:
        raise ValueError("lat/lon out of range")
    datum = str(obj.get("datum") or "wgs84").lower()
    if datum not in ("wgs84", "gcj02"):
        raise ValueError(f"datum {datum!r}: expected wgs84 or gcj02")
    return GeoPoint(lat_f, lon_f, datum)


def result_json(r: RouteResult) -> dict[str, Any]:
    return {
        "grid": r.grid,
        "status": r.status.value,
        "candidates": r.candidates,
        "matched": r.matched,
    }


def route_lines(router: Router, inp: TextIO, out: TextIO) -> int:
    """Route each JSON line of `inp`; a bad line gets {"error": ...} so lines stay paired.
    Returns the number of bad lines."""
    bad = 0
    for line in inp:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("each line must be a JSON object")
            text = obj.get("text") or ""
            if not isinstance(text, str):
                raise ValueError("text must be a string")
            chat = obj.get("chat_grid")
            res = result_json(router.route(text, str(chat) if chat else None, _point(obj)))
        except (ValueError, TypeError) as e:
            bad += 1
            res = {"error": str(e)}
        out.write(json.dumps(res, ensure_ascii=False) + "\n")
    out.flush()
    return bad


async def route_jsonl(database_url: str, inp: TextIO, out: TextIO) -> int:
    """Exit status: 0 when every line routed (whatever the status), 1 if any line was bad."""
    router = await load_router(database_url)
    return 1 if route_lines(router, inp, out) else 0
