"""One sweep (bot/tickets/sweeper.py, what serve runs every SWEEP_SECONDS) at 10,000 and at
1,000,000 tickets.

Each database is the real schema with the sample county, an identity for every staff member
and for the residents, filled in SQL as bench/report.py does (INSERT ... SELECT over a
recursive sequence): all but OPEN tickets closed or rejected years back, with no deadline left,
and OPEN recent ones in every open state with their deadlines, DUE of them past due at the
bench's now; two events and one sent outbox row a ticket. A sweep is one tick of run_sweeper
(sweep_once until nothing is due) through the service's own App (aiosqlite, BEGIN IMMEDIATE);
the open tickets are put back between runs, and the median of the runs is reported.

Same run, same file, the baselines: an empty write transaction, and an idle sweep (nothing
due: the query alone). Every statement a sweep runs is EXPLAINed; a full scan of a large table
(tickets above all) fails the bench. /metrics' database reads are timed at each size too.
Usage: python bench/sweep.py [--sizes 10000 1000000] [--repeats 5] [--keep DIR]
Last line: one JSON object {sweep_ms_10k, sweep_ms_1m, ratio, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bot.app import App, build_app, prepare_database  # noqa: E402
from bot.deps import Deps  # noqa: E402
from bot.metrics import metrics_for  # noqa: E402
from bot.tickets.sweeper import sweep_once  # noqa: E402
from config.settings import Settings  # noqa: E402
from models.tickets import Ticket  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=SH)  # a Tuesday, inside working hours
OPEN, DUE = 300, 40
YEARS = 3 * 365 * 86400
# tables that grow with the tickets: a SCAN of one is a cost that grows with the database
LARGE = ("tickets", "ticket_events", "outbox", "inbound_log", "attachments", "sent_messages",
         "identities")
SCAN = re.compile(r"\bSCAN (\w+)")


def ts(expr: str) -> str:
    """SQL for a unix time -> the text SQLAlchemy stores a UTC datetime as on SQLite."""
    return f"(strftime('%Y-%m-%d %H:%M:%S', {expr}, 'unixepoch') || '.000000')"


# i = n - (N - OPEN) numbers the open tickets 1..OPEN; d is the deadline the state runs
# against (the first DUE a minute apart before now, the rest up to three days ahead)
TICKETS = f"""
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n),
t AS (SELECT n, n - (:n - :open) AS i, :now - 3 * 86400 - (n * 7919) % {YEARS} AS c FROM seq),
u AS (SELECT t.*, CASE WHEN i <= 0 THEN NULL WHEN i <= :due THEN :now - i * 60
                       ELSE :now + 3600 + (i * 613) % 259200 END AS d,
             CASE WHEN i <= 0 THEN CASE WHEN n % 20 = 0 THEN 'rejected' ELSE 'closed' END
                  ELSE CASE i % 6 WHEN 0 THEN 'reported' WHEN 1 THEN 'assigned'
                       WHEN 2 THEN 'acknowledged' WHEN 3 THEN 'in_progress'
                       WHEN 4 THEN 'resolved' ELSE 'reopened' END END AS st
      FROM t)
INSERT INTO tickets (id, number, state, category, text, place_text, route_status, candidates,
    grid_id, community_id, assignee_id, unrouted, channel, chat_id, chat_kind,
    reporter_user_id, reporter_name, escalation_level, created_at, updated_at, assigned_at,
    resolved_at, closed_at, route_due_at, ack_due_at, resolve_due_at, confirm_due_at,
    escalation_at)
SELECT n, 'B-' || n, st, '环境卫生', '南关农贸市场门口垃圾堆了三天没人清运', '南关农贸市场',
    CASE WHEN st = 'reported' THEN 'ambiguous' ELSE 'routed' END, '[]',
    CASE WHEN st = 'reported' THEN NULL ELSE g.grid_id END, g.community_id,
    CASE WHEN st IN ('reported', 'rejected') THEN NULL ELSE g.worker END, 0,
    'bench', 'u' || (n % :residents), 'private', 'u' || (n % :residents), '居民',
    0,
    {ts('coalesce(d - 7200, c)')}, {ts('coalesce(d - 3600, c + 345600)')},
    CASE WHEN st NOT IN ('reported', 'rejected') THEN {ts('coalesce(d - 7200, c) + 60')} END,
    CASE WHEN st IN ('resolved', 'closed') THEN {ts('coalesce(d - 3600, c + 259200)')} END,
    CASE WHEN st IN ('closed', 'rejected') THEN {ts('c + 345600')} END,
    CASE WHEN d IS NOT NULL THEN {ts('d')} END,
    CASE WHEN d IS NOT NULL THEN {ts('d')} ELSE {ts('c + 7260')} END,
    CASE WHEN d IS NOT NULL THEN {ts('d')} ELSE {ts('c + 259200')} END,
    CASE WHEN d IS NOT NULL THEN {ts('d')} END,
    CASE WHEN d IS NOT NULL THEN {ts('d')} END
FROM u JOIN gmap g ON g.k = n % (SELECT count(*) FROM gmap)
"""

GMAP = """
CREATE TEMP TABLE gmap AS
SELECT row_number() OVER (ORDER BY g.id) - 1 AS k, g.id AS grid_id, g.community_id,
       (SELECT min(person_id) FROM staff_assignments s
        WHERE s.grid_id = g.id AND s.role = 'worker') AS worker
FROM grids g
"""
IDENTITIES = """
INSERT INTO identities (channel, user_id, display_name, person_id, private_chat_id, created_at)
SELECT 'bench', 'p' || id, name, id, 'p' || id, :at FROM people
"""
RESIDENTS = """
WITH RECURSIVE seq(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM seq WHERE k < :residents - 1)
INSERT INTO identities (channel, user_id, display_name, private_chat_id, created_at)
SELECT 'bench', 'u' || k, '居民', 'u' || k, :at FROM seq
"""
EVENTS = f"""
INSERT INTO ticket_events (ticket_id, at, kind, from_state, to_state, actor_role, actor_name,
                           note)
SELECT id, created_at, 'transition', NULL, 'reported', 'resident', '', '' FROM tickets;
INSERT INTO ticket_events (ticket_id, at, kind, from_state, to_state, actor_role, actor_name,
                           note)
SELECT id, closed_at, 'transition', 'resolved', state, 'system', '', ''
FROM tickets WHERE closed_at IS NOT NULL;
INSERT INTO outbox (channel, chat_id, chat_kind, payload, ticket_id, status, attempts,
                    next_attempt_at, created_at, sent_at)
SELECT 'bench', chat_id, 'private', '{{"text": "已受理"}}', id, 'sent', 1, created_at,
       created_at, {ts('unixepoch(created_at) + 2')} FROM tickets;
"""


def stored(when: datetime) -> str:
    return when.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(path: Path, n: int) -> float:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    residents = max(100, min(n // 20, 50_000))
    t0 = time.perf_counter()
    with db:
        db.execute(GMAP)
        db.execute(IDENTITIES, {"at": stored(NOW)})
        db.execute(RESIDENTS, {"residents": residents, "at": stored(NOW)})
        db.execute(TICKETS, {"n": n, "open": OPEN, "due": DUE, "now": int(NOW.timestamp()),
                             "residents": residents})
    db.executescript(EVENTS)
    # what the runs are reset to: the open tickets, the newest event and outbox row
    db.executescript(f"""
        CREATE TABLE bench_open AS SELECT * FROM tickets WHERE id > {n - OPEN};
        CREATE TABLE bench_marks AS SELECT (SELECT max(id) FROM ticket_events) AS events,
                                           (SELECT max(id) FROM outbox) AS outbox;
        ANALYZE;""")
    db.close()
    return time.perf_counter() - t0


def reset(path: Path) -> None:
    cols = [c.key for c in Ticket.__table__.columns if c.key != "id"]
    db = sqlite3.connect(path, timeout=30)
    with db:
        db.execute(f"UPDATE tickets SET {', '.join(f'{c} = b.{c}' for c in cols)} "
                   "FROM bench_open b WHERE b.id = tickets.id")
        db.execute("DELETE FROM ticket_events WHERE id > (SELECT events FROM bench_marks)")
        db.execute("DELETE FROM outbox WHERE id > (SELECT outbox FROM bench_marks)")
    db.close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def one_sweep(deps: Deps) -> int:
    """One tick of run_sweeper."""
    total = 0
    for _ in range(50):
        done = await sweep_once(deps)
        total += done
        if done == 0:
            break
    return total


async def timed_ms(fn: Callable[[], Awaitable[Any]], repeats: int,
                   before: Callable[[], None] = lambda: None) -> float:
    runs = []
    for _ in range(repeats):
        before()
        t0 = time.perf_counter()
        await fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs)


class Statements:
    """Every statement the engine sends while `on` is set, with its parameters."""

    def __init__(self, engine: Engine) -> None:
        self.on, self.seen = False, dict[str, tuple[Any, ...]]()
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any,
                _many: bool) -> None:
        if self.on and statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            self.seen.setdefault(statement, tuple(params or ()))


def plans(path: Path, seen: dict[str, tuple[Any, ...]]) -> list[str]:
    """Print each statement's plan; returns the full scans of large tables."""
    db = sqlite3.connect(path)
    scans: list[str] = []
    for sql, params in seen.items():
        print("    " + " ".join(sql.split())[:150])
        for row in db.execute("EXPLAIN QUERY PLAN " + sql, params):
            line = str(row[3])
            m = SCAN.search(line)
            bad = m is not None and m.group(1) in LARGE
            print(f"        {'FULL SCAN -> ' if bad else ''}{line}")
            if bad:
                scans.append(f"{line} in: {' '.join(sql.split())[:120]}")
    db.close()
    return scans


async def measure(path: Path, repeats: int) -> dict[str, Any]:
    clock = Clock()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", sample_data=False,
                        _env_file=None)  # type: ignore[call-arg]
    app: App = await build_app(settings, {}, clock=clock)
    statements = Statements(app.engine.sync_engine)
    try:
        async def empty() -> None:
            async with app.deps.sm() as s, s.begin():
                await s.execute(text("SELECT 1"))

        empty_ms = await timed_ms(empty, repeats)
        clock.now = NOW - timedelta(hours=2)  # before every deadline: nothing is due
        idle_ms = await timed_ms(lambda: one_sweep(app.deps), repeats)
        clock.now = NOW
        reset(path)
        statements.on = True
        assert await one_sweep(app.deps) == DUE, "the bench's due tickets were not all swept"
        statements.on = False
        sweep_ms = await timed_ms(lambda: one_sweep(app.deps), repeats, lambda: reset(path))
        metrics = metrics_for(app)
        scrape_ms = await timed_ms(metrics.render, repeats)
        scans = plans(path, statements.seen)
        return {"empty_ms": empty_ms, "idle_ms": idle_ms, "sweep_ms": sweep_ms,
                "scrape_ms": scrape_ms, "scans": scans, "statements": len(statements.seen)}
    finally:
        await app.close()


def label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the databases here and leave them")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    scans: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            path = where / f"bench_sweep_{n}.db"
            path.unlink(missing_ok=True)
            url = f"sqlite+aiosqlite:///{path}"
            await prepare_database(Settings(database_url=url,
                                            _env_file=None))  # type: ignore[call-arg]
            fill_s = fill(path, n)
            size = path.stat().st_size / 2**20
            print(f"filled  {n} tickets ({OPEN} open, {DUE} due) in {fill_s:.1f} s "
                  f"({size:.0f} MB); the statements of one sweep and their plans:")
            r = await measure(path, args.repeats)
            scans += r["scans"]
            print(f"base    empty write transaction          {r['empty_ms']:8.2f} ms")
            print(f"base    idle sweep (nothing due)         {r['idle_ms']:8.2f} ms")
            print(f"sweep   {DUE} due tickets                  {r['sweep_ms']:8.2f} ms  "
                  f"({r['sweep_ms'] / DUE:.2f} ms a ticket)")
            print(f"scrape  /metrics database reads          {r['scrape_ms']:8.2f} ms")
            tag = label(n)
            out.update({f"sweep_ms_{tag}": round(r["sweep_ms"], 2),
                        f"idle_ms_{tag}": round(r["idle_ms"], 3),
                        f"empty_ms_{tag}": round(r["empty_ms"], 3),
                        f"scrape_ms_{tag}": round(r["scrape_ms"], 2)})
    sizes = [label(n) for n in args.sizes]
    ratio = out[f"sweep_ms_{sizes[-1]}"] / out[f"sweep_ms_{sizes[0]}"]
    print(f"sweep at {sizes[-1]} / at {sizes[0]}: {ratio:.2f}x (target: within 2x: "
          f"{'met' if ratio <= 2 else 'NOT met'})")
    print("full scans of large tables: " + ("none, every statement uses an index"
                                             if not scans else "; ".join(scans)))
    print(json.dumps({**out, "ratio": round(ratio, 2), "within_2x": ratio <= 2,
                      "indexed": not scans, "open": OPEN, "due": DUE}))
    if scans:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
