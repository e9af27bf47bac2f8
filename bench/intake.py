"""Intake throughput: group reports through the real Dispatcher into a real SQLite file.

Same run, same machine, two baselines:
  floor   - a bare aiosqlite "insert one row + commit" loop (what one commit per report costs)
  ceiling - the same Dispatcher feeding the same updates to a handler that does nothing
Usage: python bench/intake.py [--n 3000]
Last line: one JSON object {reports_per_s, p99_ms, duplicates, floor_per_s, ceiling_per_s}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
from aiogram import Dispatcher  # noqa: E402
from aiogram.types import Update  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bot.app import App, build_app  # noqa: E402
from config.settings import SAMPLE_DIR, Settings  # noqa: E402
from handlers.telegram.routers import build_routers  # noqa: E402
from models.people import ChatBinding, Identity, StaffAssignment  # noqa: E402
from models.tickets import InboundLog, Outbox, Ticket  # noqa: E402
from tests.fakes.recording import RecordingBot, make_message_update  # noqa: E402

PROBLEMS = ["路灯坏了好几天", "门口垃圾没人清运", "下水道堵了", "楼道里电动车充电很危险",
            "晚上广场舞太吵", "井盖松动", "墙上小广告很多", "单元门门禁坏了"]


def places() -> list[str]:
    with (SAMPLE_DIR / "places.csv").open(encoding="utf-8") as f:
        return sorted({row["place"] for row in csv.DictReader(f) if not row["numbers"]})


def make_updates(bot: RecordingBot, n: int, first_id: int, chats: list[int]) -> list[Update]:
    names = places()
    return [
        make_message_update(
            # one report per resident: intake holds a person's sixth report in a minute
            first_id + i, chats[i % len(chats)], "supergroup", 10_000 + first_id + i,
            f"居民{i % 500}",
            # a building of its own: the same problem at the same place would follow the
            # first report as a co-report (附议), with no ticket or card of its own
            text=f"报事 {names[i % len(names)]}{first_id + i}号楼{PROBLEMS[i % len(PROBLEMS)]}",
            bot=bot)
        for i in range(n)
    ]


async def feed(dp: Dispatcher, bot: RecordingBot, updates: list[Update], conc: int
               ) -> tuple[float, list[float]]:
    queue: asyncio.Queue[Update] = asyncio.Queue()
    for u in updates:
        queue.put_nowait(u)
    lat: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            u = queue.get_nowait()
            t0 = time.perf_counter()
            await dp.feed_update(bot, u)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return time.perf_counter() - t0, lat


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100)[int(p) - 1] * 1000 if len(xs) > 1 else 0.0


async def floor_rate(path: Path, n: int) -> float:
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        t0 = time.perf_counter()
        for i in range(n):
            await db.execute("INSERT INTO t (body) VALUES (?)", (f"row {i}",))
            await db.commit()
        return n / (time.perf_counter() - t0)


class NullCore:
    """Stands where the core stands: the routers and filters run, the handler does nothing."""

    media = None  # no media store: text reports fetch nothing anyway

    async def on_message(self, _ib: object) -> None:
        return None


async def ceiling_rate(n: int, conc: int) -> float:
    bot = RecordingBot()
    dp = Dispatcher(core=NullCore())
    dp.include_routers(*build_routers())
    updates = make_updates(bot, n, 1, list(range(-1001, -1201, -1)))
    gc.freeze()
    await bot.me()
    secs, _ = await feed(dp, bot, updates, conc)
    return n / secs


async def county_app(tmp: Path) -> tuple[App, Dispatcher, RecordingBot, list[int]]:
    """The service on a fresh SQLite file: 200 group chats bound to grids, every worker on
    Telegram as in a running county (so each report also queues a card)."""
    # quiet hours off: on the real clock, a night run would hold the cards and measure less
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
                        quiet_hours="off", _env_file=None)  # type: ignore[call-arg]
    app = await build_app(settings, senders={})
    bot = RecordingBot()
    dp = Dispatcher(core=app.core)
    dp.include_routers(*build_routers())
    await bot.me()
    grids = list(app.deps.county.index.grids.values())
    chats = [-100_000 - i for i in range(200)]
    async with app.deps.sm() as s, s.begin():
        s.add_all(ChatBinding(channel="telegram", chat_id=str(c), grid_id=grids[i % len(grids)].id,
                              community_id=grids[i % len(grids)].community_id)
                  for i, c in enumerate(chats))
        workers = (await s.scalars(select(StaffAssignment.person_id).where(
            StaffAssignment.role == "worker"))).all()
        s.add_all(Identity(channel="telegram", user_id=str(pid), person_id=pid,
                           private_chat_id=str(pid)) for pid in set(workers))
    return app, dp, bot, chats


async def run(n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    app, dp, bot, chats = await county_app(tmp)
    results: dict[int, dict[str, float]] = {}
    next_id = 1
    for conc in (1, 32):
        count = n // 4 if conc == 1 else n
        updates = make_updates(bot, count, next_id, chats)
        gc.freeze()  # the pre-built inputs are the harness's, not the service's heap
        next_id += count
        secs, lat = await feed(dp, bot, updates, conc)
        results[conc] = {"per_s": count / secs, "p50": pct(lat, 50), "p95": pct(lat, 95),
                         "p99": pct(lat, 99)}
        print(f"intake  conc={conc:<3} n={count:<6} {count / secs:8.0f} reports/s   "
              f"p50 {results[conc]['p50']:6.1f} ms  p95 {results[conc]['p95']:6.1f} ms  "
              f"p99 {results[conc]['p99']:6.1f} ms")
    # redelivery under concurrency: the last 500 again, each twice at once
    again = updates[-500:]
    await feed(dp, bot, again + again, 32)
    async with app.deps.sm() as s:
        tickets = await s.scalar(select(func.count()).select_from(Ticket))
        logged = await s.scalar(select(func.count()).select_from(InboundLog))
        queued = await s.scalar(select(func.count()).select_from(Outbox))
    duplicates = (tickets or 0) - (next_id - 1)
    print(f"tickets {tickets}  inbound rows {logged}  outbox rows {queued}  "
          f"fed {next_id - 1} (+1000 redelivered)  duplicates {duplicates}")
    await app.close()
    floor = await floor_rate(tmp / "floor.db", 2000)
    ceiling = await ceiling_rate(n, 32)
    print(f"floor   bare aiosqlite insert+commit      {floor:8.0f} rows/s")
    print(f"ceiling same dispatcher+routers, no-op core {ceiling:6.0f} updates/s (conc 32)")
    print(f"intake at conc 32 is {results[32]['per_s'] / ceiling:.0%} of the ceiling and "
          f"{results[32]['per_s'] / floor:.1f}x the one-commit-per-report floor")
    return {"reports_per_s": round(results[32]["per_s"]), "p99_ms": round(results[32]["p99"], 1),
            "duplicates": duplicates, "floor_per_s": round(floor),
            "ceiling_per_s": round(ceiling)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.n))))


if __name__ == "__main__":
    main()
