"""The rates page: the `report` command's figures (one function builds both), as charts, a
table and the same XLSX file."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from bot.reports.period import Period
from bot.reports.rates import By, compute, total
from bot.reports.scope import Scope
from bot.reports.table import build_report, rate_columns
from bot.reports.xlsx import write_report_xlsx
from handlers.web.context import DESK_KEY, DeskState, current

T = TypeVar("T")
BYS: tuple[By, ...] = ("community", "grid", "worker", "partner")  # build_report's groupings
MAX_WEEKS = 26


def add_routes(desk: web.Application) -> None:
    desk.router.add_get("/rates", rates_page)
    desk.router.add_get("/rates/weeks", rates_weeks)
    desk.router.add_get("/rates.xlsx", rates_xlsx)


def _period(state: DeskState, q: Any) -> tuple[Period, By]:
    today = state.app.deps.clock().astimezone(state.tz).date()
    try:
        first = date.fromisoformat(q.get("from", ""))
    except ValueError:
        first = today.replace(day=1)
    try:
        last = date.fromisoformat(q.get("to", ""))
    except ValueError:
        last = today
    if last < first or (last - first).days > 366:
        first, last = today.replace(day=1), today
    by = q.get("by", "community")
    return Period(first, last, state.tz), cast(By, by if by in BYS else "community")


async def _read(state: DeskState, fn: Callable[[Connection], T]) -> T:
    async with state.app.deps.reader()() as s:
        return await s.run_sync(lambda ss: fn(cast(AsyncSession, ss).connection()))  # type: ignore[arg-type]


def _weeks(conn: Connection, period: Period, as_of: datetime) -> list[dict[str, Any]]:
    """The county's three rates week by week, from the same counts as the report."""
    out: list[dict[str, Any]] = []
    first = period.first
    while first <= period.last and len(out) < MAX_WEEKS:
        last = min(first + timedelta(days=6), period.last)
        week = total(compute(conn, Scope(Period(first, last, period.tz)), as_of).values())
        out.append({"week": f"{first:%m-%d}", "rates": [
            col.value(week) for col in rate_columns()]})
        first = last + timedelta(days=1)
    return out


async def rates_page(request: web.Request) -> web.StreamResponse:
    await current(request)
    state = request.app[DESK_KEY]
    period, by = _period(state, request.query)
    as_of = state.app.deps.clock()

    report = await _read(state, lambda c: build_report(c, period, as_of, by))
    table = report.tables[by]
    rates = [c.header for c in rate_columns()]
    at = [table.headers.index(h) for h in rates]
    groups = table.rows[:-1]
    chart = {"names": table.names, "rates": rates,
             "series": [[row[i] for row in groups] for i in at],
             "weeks_src": f"/desk/rates/weeks?from={period.first}&to={period.last}"}
    return aiohttp_jinja2.render_template("rates.html", request, {
        "report": report, "table": table, "chart": chart, "by": by, "bys": BYS,
        "first": period.first.isoformat(), "last": period.last.isoformat()})


async def rates_weeks(request: web.Request) -> web.StreamResponse:
    """The weekly line, asked for by the page once it shows: one count per week is slower
    than the page's own figures, and the table should not wait for it."""
    await current(request)
    state = request.app[DESK_KEY]
    period, _by = _period(state, request.query)
    as_of = state.app.deps.clock()
    weeks = await _read(state, lambda c: _weeks(c, period, as_of))
    return web.json_response({"weeks": [w["week"] for w in weeks], "series": [
        [w["rates"][k] for w in weeks] for k in range(len(rate_columns()))]})


async def rates_xlsx(request: web.Request) -> web.StreamResponse:
    await current(request)
    state = request.app[DESK_KEY]
    period, by = _period(state, request.query)
    as_of = state.app.deps.clock()
    report = await _read(state, lambda c: build_report(c, period, as_of, by))

    def write() -> bytes:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "rates.xlsx"
            write_report_xlsx(report, path)
            return path.read_bytes()

    body = await asyncio.to_thread(write)
    name = f"rates-{period.first:%Y%m%d}-{period.last:%Y%m%d}.xlsx"
    return web.Response(body=body, headers={
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Content-Disposition": f'attachment; filename="{name}"'})
