"""The rates report over 1,000,000 tickets: time and peak memory of `run_bot.py report`.

Builds a migrated SQLite file (the real schema) and fills it in SQL (INSERT ... SELECT over a
recursive sequence, no ORM): 6 communities, 150 grids, 300 workers, N tickets reported from
1 January to 30 November 2026 in a spread of states (late, reopened, returned, rejected,
escalated) and about 4.7 events a ticket, as the lifecycle writes them.

Same run, same file, the baseline: `SELECT count(*) FROM tickets` (SQLite answers it from the
smallest index), and the same count forced to read every ticket row, the least any report
over every ticket can cost. Then the report as an operator runs it, a subprocess (its peak RSS from
getrusage of the child): the whole period (every ticket) and one month; and the SQL alone
in-process, without and with the events index docs/rates.md weighs.
Usage: python bench/report.py [--n 1000000] [--keep DIR]
Last line: one JSON object {report_s, rss_mb, month_s, count_s, scan_s, sql_s, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402

from bot.reports.period import Period  # noqa: E402
from bot.reports.rates import compute  # noqa: E402
from bot.reports.scope import Scope  # noqa: E402
from models.db import upgrade_sync  # noqa: E402

SH = ZoneInfo("Asia/Shanghai")
GRIDS, PER_COMMUNITY = 150, 25
# candidates docs/rates.md weighs; created here only for the "indexed" figures
INDEXES = (
    "CREATE INDEX ix_ticket_events_verdicts ON ticket_events (from_state, to_state, ticket_id,"
    " note)",
)


def ts(expr: str) -> str:
    """SQL for a unix time -> the text SQLAlchemy stores a UTC datetime as on SQLite."""
    return f"(strftime('%Y-%m-%d %H:%M:%S', {expr}, 'unixepoch') || '.000000')"


def county(db: sqlite3.Connection) -> None:
    db.executemany("INSERT INTO communities (id, code, name, active, extra) "
                   "VALUES (?, ?, ?, 1, '{}')",
                   [(c, f"C{c}", f"社区{c}") for c in range(1, GRIDS // PER_COMMUNITY + 1)])
    db.executemany("INSERT INTO grids (id, code, name, community_id, micro_grids, active, extra)"
                   " VALUES (?, ?, ?, ?, '[]', 1, '{}')",
                   [(g, f"G{g:03d}", f"网格{g}", (g - 1) // PER_COMMUNITY + 1)
                    for g in range(1, GRIDS + 1)])
    db.executemany("INSERT INTO people (id, name, phone, active) VALUES (?, ?, '', 1)",
                   [(p, f"网格员{p}") for p in range(1, 2 * GRIDS + 1)])
    db.executemany("INSERT INTO staff_assignments (person_id, role, grid_id, active, source) "
                   "VALUES (?, 'worker', ?, 1, 'import')",
                   [(p, (p - 1) // 2 + 1) for p in range(1, 2 * GRIDS + 1)])


# r = n % 100 picks the story: <60 rated and closed, <70 auto-closed, <75 resolved,
# <80 in progress, <84 acknowledged, <88 assigned, <90 returned, <92 rejected, 92 waiting
# for a place, >=93 reopened once and then closed
TICKETS = f"""
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < :n),
g AS (SELECT n, n % 100 AS r, n % {GRIDS} AS grid,
             :base + (n * 7919) % :span AS c FROM seq)
INSERT INTO tickets (id, number, state, category, text, place_text, route_status, candidates,
    grid_id, community_id, assignee_id, unrouted, channel, chat_id, chat_kind,
    reporter_user_id, reporter_name, escalation_level, satisfaction, created_at, updated_at,
    assigned_at, acknowledged_at, resolved_at, closed_at, ack_due_at, resolve_due_at)
SELECT n, 'B-' || n,
    CASE WHEN r < 70 OR r >= 93 THEN 'closed' WHEN r < 75 THEN 'resolved'
         WHEN r < 80 THEN 'in_progress' WHEN r < 84 THEN 'acknowledged'
         WHEN r < 88 THEN 'assigned' WHEN r < 90 THEN 'returned' WHEN r < 92 THEN 'rejected'
         ELSE 'reported' END,
    '环境卫生', '路灯坏了', CASE WHEN n % 7 = 0 THEN '小区' || (n % 500) ELSE '' END,
    'routed', '[]',
    CASE WHEN r = 92 THEN NULL ELSE grid + 1 END,
    CASE WHEN r = 92 THEN NULL ELSE grid / {PER_COMMUNITY} + 1 END,
    CASE WHEN r = 92 OR r IN (88, 89) THEN NULL ELSE grid * 2 + 1 + (n / {GRIDS}) % 2 END,
    0, 'telegram', 'chat', 'group', 'u' || (n % 50000), '居民',
    CASE WHEN n % 29 = 0 THEN 3 WHEN n % 13 = 0 THEN 1 ELSE 0 END,
    CASE WHEN r < 60 THEN CASE WHEN n % 10 < 7 THEN 'satisfied' WHEN n % 10 < 9 THEN 'fairly'
         ELSE 'unsatisfied' END WHEN r >= 93 THEN 'satisfied' END,
    {ts('c')}, {ts('c')},
    CASE WHEN r = 92 THEN NULL WHEN r >= 93 THEN {ts('c + 172800')} ELSE {ts('c + 60')} END,
    CASE WHEN r >= 93 THEN {ts('c + 174600')}
         WHEN r < 84 THEN {ts('c + 60 + ((n * 31) % 180) * 60')} END,
    CASE WHEN r >= 93 THEN {ts('c + 259200')}
         WHEN r < 75 THEN {ts('c + ((n * 17) % 96) * 3600 + 7200')} END,
    CASE WHEN r >= 93 THEN {ts('c + 345600')}
         WHEN r < 70 THEN {ts('c + ((n * 17) % 96) * 3600 + 93600')} END,
    CASE WHEN r = 92 THEN NULL WHEN r >= 93 THEN {ts('c + 180000')} ELSE {ts('c + 7260')} END,
    CASE WHEN r = 92 THEN NULL WHEN r >= 93 THEN {ts('c + 432000')} ELSE {ts('c + 259200')} END
FROM g
"""

EVENT = ("INSERT INTO ticket_events (ticket_id, at, kind, from_state, to_state, actor_role, "
         "actor_name, note) SELECT id, {at}, '{kind}', {frm}, {to}, '{role}', '', {note} "
         "FROM tickets WHERE {where}")
ONE_DAY_AFTER_REPORT = ts("unixepoch(created_at) + 86400")
EVENTS = [
    dict(at="created_at", kind="transition", frm="NULL", to="'reported'", role="resident",
         note="''", where="1"),
    dict(at="created_at", kind="transition", frm="'reported'", to="'assigned'", role="system",
         note="''", where="state != 'reported'"),
    dict(at="acknowledged_at", kind="transition", frm="'assigned'", to="'acknowledged'",
         role="worker", note="''", where="acknowledged_at IS NOT NULL"),
    dict(at="resolved_at", kind="transition", frm="'acknowledged'", to="'resolved'",
         role="worker", note="''", where="resolved_at IS NOT NULL"),
    dict(at="closed_at", kind="transition", frm="'resolved'", to="'closed'", role="resident",
         note="satisfaction", where="state = 'closed' AND satisfaction IS NOT NULL"),
    dict(at="closed_at", kind="transition", frm="'resolved'", to="'closed'", role="system",
         note="'no rating'", where="state = 'closed' AND satisfaction IS NULL"),
    # the first round of a reopened ticket: resolved, not satisfied, back to work
    dict(at=ONE_DAY_AFTER_REPORT, kind="transition", frm="'acknowledged'", to="'resolved'",
         role="worker", note="''", where="id % 100 >= 93"),
    dict(at="assigned_at", kind="transition", frm="'resolved'", to="'reopened'",
         role="resident", note="'unsatisfied'", where="id % 100 >= 93"),
    dict(at="assigned_at", kind="transition", frm="'reopened'", to="'assigned'", role="system",
         note="''", where="id % 100 >= 93"),
    dict(at="coalesce(ack_due_at, created_at)", kind="escalate", frm="NULL", to="NULL",
         role="system", note="'level 1'", where="escalation_level > 0"),
]


def fill(path: Path, n: int) -> tuple[int, float]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    t0 = time.perf_counter()
    with db:
        county(db)
        base = int(datetime(2026, 1, 1, tzinfo=SH).timestamp())
        span = int(datetime(2026, 12, 1, tzinfo=SH).timestamp()) - base
        db.execute(TICKETS, {"n": n, "base": base, "span": span})
        for ev in EVENTS:
            db.execute(EVENT.format(**ev))
    events = db.execute("SELECT count(*) FROM ticket_events").fetchone()[0]
    db.close()
    return events, time.perf_counter() - t0


def timed(path: Path, sql: str, *args: str) -> float:
    db = sqlite3.connect(path)
    t0 = time.perf_counter()
    db.execute(sql, args).fetchone()
    took = time.perf_counter() - t0
    db.close()
    return took


def stored(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def cli(path: Path, out: Path, first: str, last: str) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of one `run_bot.py report` in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "TIMEZONE"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{path}", SAMPLE_DATA="false",
               LOG_LEVEL="WARNING")
    log = out.with_suffix(".log")
    with log.open("wb") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "run_bot.py", "report", "--from", first,
                                 "--to", last, "--by", "grid", "--format", "xlsx", "-o",
                                 str(out)], cwd=ROOT, env=env, stdout=sink, stderr=sink)
        # wait4, not wait: the child's own rusage, so its peak RSS alone
        _pid, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    said = log.read_text(encoding="utf-8").strip()
    if proc.returncode != 0:
        raise SystemExit(f"report failed: {said}")
    print(f"    {said}")
    return took, usage.ru_maxrss / 1024  # kilobytes on Linux


def sql_only(path: Path, period: Period) -> float:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            t0 = time.perf_counter()
            rows = compute(conn, Scope(period), datetime.now(UTC))
            took = time.perf_counter() - t0
        assert sum(c.tickets for c in rows.values()) > 0
        return took
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="build the database here and leave it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        db = where / "bench_report.db"
        db.unlink(missing_ok=True)
        upgrade_sync(f"sqlite+aiosqlite:///{db}")
        events, fill_s = fill(db, args.n)
        size = db.stat().st_size / 2**20
        print(f"filled  {args.n} tickets, {events} events in {fill_s:.1f} s ({size:.0f} MB)")
        whole = Period(datetime(2026, 1, 1).date(), datetime(2026, 11, 30).date(), SH)
        november = Period(datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date(), SH)
        count_s = timed(db, "SELECT count(*) FROM tickets")
        print(f"base    SELECT count(*) FROM tickets          {count_s:7.3f} s")
        # count(*) reads the smallest index; this reads every ticket row, as the report must
        scan_s = timed(db, "SELECT count(*) FROM tickets NOT INDEXED WHERE created_at >= ? "
                       "AND created_at < ?", stored(whole.start), stored(whole.end))
        print(f"base    the same over every row (no index)  {scan_s:7.3f} s")
        sql_s = sql_only(db, whole)
        sql_month_s = sql_only(db, november)
        print(f"sql     compute(), all {args.n} tickets        {sql_s:7.3f} s")
        print(f"sql     compute(), November only            {sql_month_s:7.3f} s")
        report_s, rss_mb = cli(db, where / "all.xlsx", "2026-01-01", "2026-11-30")
        print(f"report  run_bot.py report, whole period     {report_s:7.3f} s  "
              f"peak RSS {rss_mb:.0f} MB")
        month_s, month_rss = cli(db, where / "november.xlsx", "2026-11-01", "2026-11-30")
        print(f"report  run_bot.py report, November         {month_s:7.3f} s  "
              f"peak RSS {month_rss:.0f} MB")
        con = sqlite3.connect(db)
        t0 = time.perf_counter()
        for ddl in INDEXES:
            con.execute(ddl)
        con.commit()
        con.close()
        index_s = time.perf_counter() - t0
        sql_indexed_s = sql_only(db, whole)
        sql_month_indexed_s = sql_only(db, november)
        print(f"index   ix_ticket_events_verdicts built in  {index_s:7.3f} s")
        print(f"sql     compute(), all, indexed             {sql_indexed_s:7.3f} s")
        print(f"sql     compute(), November, indexed        {sql_month_indexed_s:7.3f} s")
        met = "met" if report_s <= 10 and rss_mb <= 500 else "NOT met"
        print(f"report over every ticket: {report_s / scan_s:.0f}x one read of every ticket "
              f"row; target 10 s and 500 MB: {met}")
    print(json.dumps({
        "report_s": round(report_s, 2), "rss_mb": round(rss_mb), "month_s": round(month_s, 2),
        "count_s": round(count_s, 3), "scan_s": round(scan_s, 3), "sql_s": round(sql_s, 2),
        "sql_month_s": round(sql_month_s, 2), "sql_indexed_s": round(sql_indexed_s, 2),
        "sql_month_indexed_s": round(sql_month_indexed_s, 2), "tickets": args.n,
        "events": events}))


if __name__ == "__main__":
    main()
