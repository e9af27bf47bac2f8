"""The web desk over HTTP with 100,000 tickets (4,000 of them co-reports): p95 of the queue
(the co-reports queue among them), a ticket, the map's data and the rates page.

Fills a migrated SQLite file with bench/report.py's tickets (6 communities, 150 grids, a
spread of states, ~4.7 events a ticket), adds a square boundary per grid and a location to
every third ticket, then serves the real app with the desk on 127.0.0.1 and signs in as a
command-centre member (who sees everything: the widest scope). Each page is asked for
sequentially, after a warm-up. Baseline: /healthz on the same server (one small query), the
least an HTTP request to this process costs.
Usage: python bench/desk.py [--n 100000] [--rounds 40]
Last line: one JSON object {queue_p95_ms, ticket_p95_ms, map_p95_ms, rates_p95_ms, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from report import GRIDS, fill  # noqa: E402

from bot.app import build_app  # noqa: E402
from config.settings import Settings  # noqa: E402
from handlers.http import make_web_app, start_site  # noqa: E402
from handlers.web.desk import Desk  # noqa: E402
from handlers.web.links import Links  # noqa: E402
from models.base import utcnow  # noqa: E402
from models.db import upgrade_sync  # noqa: E402

TARGET_MS = 300
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def extras(path: Path) -> None:
    """Boundaries, locations, and the centre member the bench signs in as."""
    db = sqlite3.connect(path)
    with db:
        rows = []
        for g in range(1, GRIDS + 1):
            x, y = 111.80 + (g - 1) % 15 * 0.004, 35.95 + (g - 1) // 15 * 0.004
            ring = [[x, y], [x + 0.004, y], [x + 0.004, y + 0.004], [x, y + 0.004], [x, y]]
            rows.append((g, json.dumps({"type": "Polygon", "coordinates": [ring]})))
        db.executemany("INSERT INTO boundaries (grid_id, geometry, source_datum, active) "
                       "VALUES (?, ?, 'wgs84', 1)", rows)
        db.execute("UPDATE tickets SET lat = 35.95 + (id % 400) * 0.0001, "
                   "lon = 111.80 + (id % 600) * 0.0001, datum = 'wgs84' WHERE id % 3 = 0")
        # one report in 25 follows the ticket before it (附议), for the co-reports queue
        db.execute("UPDATE tickets SET state = 'merged', merged_into_id = id - 1, "
                   "escalation_at = NULL, assignee_id = NULL WHERE id % 25 = 0")
        db.execute("INSERT INTO people (id, name, phone, active) VALUES (9999, '指挥中心', '', 1)")
        db.execute("INSERT INTO staff_assignments (person_id, role, active, source) "
                   "VALUES (9999, 'centre', 1, 'invite')")
        db.execute("INSERT INTO identities (channel, user_id, display_name, person_id, "
                   "private_chat_id, created_at) VALUES ('console', 'centre', '指挥中心', 9999, "
                   "'centre', '2026-01-01 00:00:00.000000')")
    db.close()


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


async def timed(http: aiohttp.ClientSession, urls: Callable[[int], str], rounds: int
                ) -> tuple[float, float]:
    for i in range(3):
        async with http.get(urls(i)) as r:
            assert r.status == 200, (urls(i), r.status)
            await r.read()
    took = []
    for i in range(rounds):
        t0 = time.perf_counter()
        async with http.get(urls(i)) as r:
            await r.read()
            assert r.status == 200, (urls(i), r.status)
        took.append((time.perf_counter() - t0) * 1000)
    return p95(took), statistics.median(took)


async def run(path: Path, n: int, rounds: int) -> dict[str, float]:
    port = 18765
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}",
                        sample_data=False, http_host="127.0.0.1", http_port=port,
                        desk_secret_key=SecretStr("bench"), desk_base_url=f"http://127.0.0.1:{port}")
    app = await build_app(settings, {})
    edge = Desk.from_settings(settings)
    assert edge is not None
    web_app = make_web_app(app)
    edge.mount(web_app, app)
    runner = await start_site(web_app, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with app.deps.sm() as s, s.begin():
            link = await Links(base, utcnow).issue(s, 9999, None)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(link)).text()
            csrf = CSRF.search(page)
            assert csrf
            async with http.post(f"{base}/desk/login", data={
                    "_csrf": csrf.group(1), "t": link.split("t=")[1]}) as r:
                assert r.url.path.startswith("/desk/queue/"), r.url
            rng = random.Random(7)
            ids = [rng.randint(1, n) for _ in range(rounds + 3)]
            queues = ["unrouted", "overdue", "returned", "rating", "open", "coreports",
                      "open?community=C3",
                      "overdue?grid=G042", "open?from=2026-06-01&to=2026-06-30"]
            figures = {}
            for name, urls in (
                    ("healthz", lambda i: f"{base}/healthz"),
                    ("queue", lambda i: f"{base}/desk/queue/{queues[i % len(queues)]}"),
                    ("ticket", lambda i: f"{base}/desk/tickets/{ids[i]}"),
                    ("map", lambda i: f"{base}/desk/map/data"),
                    ("rates", lambda i: f"{base}/desk/rates?from=2026-11-01&to=2026-11-30"),
                    ("rates_weeks",
                     lambda i: f"{base}/desk/rates/weeks?from=2026-11-01&to=2026-11-30"),
                    ("rates_year", lambda i: f"{base}/desk/rates?from=2026-01-01&to=2026-11-30"
                     f"&by={('community', 'grid', 'worker')[i % 3]}")):
                few = rounds if name not in ("rates_year", "rates_weeks") else max(5, rounds // 8)
                high, mid = await timed(http, urls, few)
                figures[f"{name}_p95_ms"], figures[f"{name}_median_ms"] = high, mid
                print(f"{name:11s} p95 {high:8.1f} ms   median {mid:8.1f} ms   ({few} requests)")
    finally:
        await runner.cleanup()
        await app.close()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench_desk.db"
        upgrade_sync(f"sqlite+aiosqlite:///{db}")
        events, fill_s = fill(db, args.n)
        extras(db)
        print(f"filled  {args.n} tickets, {events} events in {fill_s:.1f} s")
        figures = asyncio.run(run(db, args.n, args.rounds))
    pages = ("queue", "ticket", "map", "rates")
    met = all(figures[f"{p}_p95_ms"] <= TARGET_MS for p in pages)
    print(f"baseline /healthz p95 {figures['healthz_p95_ms']:.1f} ms; "
          f"target {TARGET_MS} ms p95 for each page: {'met' if met else 'NOT met'}")
    print(json.dumps({**{k: round(v, 1) for k, v in figures.items()}, "tickets": args.n,
                      "events": events, "target_ms": TARGET_MS, "met": met}))


if __name__ == "__main__":
    main()
