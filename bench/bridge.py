"""Bridge intake: signed JSON messages POSTed to /bridge/v1/messages of a real `run_bot.py
serve` subprocess, as a group-chat connector posts them.

The service on 127.0.0.1 with only the bridge configured, on a fresh SQLite file (migrated and
loaded with the sample county at start), outbox and sweeper running; its answers go to a fake
connector in this process (tests/fakes/connector.py), which checks their signatures. Residents
report in 200 group chats, one message each (distinct senders, so nothing folds), concurrency
32, a warm-up of 100 first. Messages are signed before the clock starts (the connector does
that on its side); each latency is from the POST to the answer, which follows the commit.

Same run, same server, one baseline:
  refused - the same POSTs without a signature: HTTP, the body read and a 401 (everything
            but the signature check, the JSON and the core)
Then connectors' retries: the last 500 messages again, each twice at once, re-signed; each must
answer 200 and make no ticket. duplicates = tickets - distinct reports.

Usage: python bench/bridge.py [--n 3000] [--conc 32]
Last line: one JSON object {bridge_msgs_per_s, p99_ms, duplicates, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from config.settings import SAMPLE_DIR  # noqa: E402
from handlers.bridge.edge import PATH  # noqa: E402
from handlers.bridge.signing import sign  # noqa: E402
from tests.fakes.connector import FakeConnector  # noqa: E402
from tests.procs import clean_env, free_port  # noqa: E402

SECRET = "bench-bridge-secret-0123456789abcdef"
CONC = 32
WARM_UP = 100
RETRIED = 500
GROUPS = 200
TIMEOUT_S = 10.0  # one request
START_S = 60.0
RUN_LIMIT_S = 900.0

PROBLEMS = ["路灯坏了好几天", "门口垃圾没人清运", "下水道堵了", "楼道里电动车充电很危险",
            "晚上广场舞太吵", "井盖松动", "墙上小广告很多", "单元门门禁坏了"]


def places() -> list[str]:
    with (SAMPLE_DIR / "places.csv").open(encoding="utf-8") as f:
        return sorted({row["place"] for row in csv.DictReader(f) if not row["numbers"]})


@dataclass(frozen=True, slots=True)
class Request:
    key: str  # chat id : message id
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    req: Request
    status: int
    body: str
    seconds: float


def make_bodies(first: int, count: int) -> list[tuple[str, bytes]]:
    names = places()
    out = []
    for i in range(first, first + count):
        chat, mid = f"wxg-{i % GROUPS:04d}@chatroom", f"bm{i:09d}"
        msg = {"id": mid, "chat": {"id": chat, "kind": "group", "title": f"小区居民群{i % GROUPS}"},
               "sender": {"id": f"wxid_resident{i:08d}", "name": f"居民{i}"},
               "text": f"报事 {names[i % len(names)]}{PROBLEMS[i % len(PROBLEMS)]}",
               "mentions_bot": True}
        out.append((f"{chat}:{mid}", json.dumps(msg, ensure_ascii=False).encode()))
    return out


def signed(bodies: list[tuple[str, bytes]], unsigned: bool = False) -> list[Request]:
    now = int(time.time())
    base = {"Content-Type": "application/json"}
    return [Request(key, body, base if unsigned else {**base, **sign(SECRET.encode(), now, body)})
            for key, body in bodies]


async def post_all(http: aiohttp.ClientSession, url: str, reqs: list[Request], conc: int
                   ) -> tuple[float, list[Reply]]:
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for r in reqs:
        queue.put_nowait(r)
    replies: list[Reply] = []

    async def worker() -> None:
        while not queue.empty():
            req = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                async with http.post(url, data=req.body, headers=req.headers) as r:
                    body, status = await r.text(), r.status
            except (aiohttp.ClientError, TimeoutError) as e:
                body, status = type(e).__name__, 0
            replies.append(Reply(req, status, body, time.perf_counter() - t0))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return time.perf_counter() - t0, replies


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100)[int(p) - 1] * 1000 if len(xs) > 1 else 0.0


def figures(label: str, conc: int, secs: float, replies: list[Reply]) -> dict[str, float]:
    lat = [r.seconds for r in replies]
    out = {"per_s": len(replies) / secs, "p50": pct(lat, 50), "p95": pct(lat, 95),
           "p99": pct(lat, 99), "max": max(lat) * 1000}
    print(f"{label:<7} conc={conc} n={len(replies):<6} {out['per_s']:8.0f} msgs/s   "
          f"p50 {out['p50']:6.1f} ms  p95 {out['p95']:6.1f} ms  p99 {out['p99']:6.1f} ms  "
          f"max {out['max']:6.1f} ms")
    return out


class Serve:
    """`run_bot.py serve` with only the bridge configured; its log goes to a file."""

    def __init__(self, tmp: Path, callback_url: str) -> None:
        self.port = free_port()
        self.db = tmp / "bench.db"
        self.log_path = tmp / "serve.log"
        env = clean_env()
        env = {k: v for k, v in env.items() if not k.upper().startswith(("BRIDGE_", "WECHAT_",
                                                                          "WECOM_", "MEDIA_"))}
        env.update({"DATABASE_URL": f"sqlite+aiosqlite:///{self.db}", "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": str(self.port), "MEDIA_DIR": str(tmp / "media"),
                    "BRIDGE_SECRET": SECRET, "BRIDGE_CALLBACK_URL": callback_url,
                    "BRIDGE_CAPABILITIES": "buttons=0,quoting=1,max_text=2000",
                    "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "run_bot.py", "serve"], cwd=ROOT,
                                         env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                async with http.get(self.base + "/healthz") as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise SystemExit(f"/healthz not ok within {START_S:g} s:\n{self.tail()}")

    async def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            for _ in range(300):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                self.proc.kill()
        return self.proc.wait()

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def counts(db: Path) -> tuple[int, int]:
    """(tickets, distinct reports behind them) read straight from the service's file."""
    with sqlite3.connect(db) as c:
        tickets, distinct = c.execute(
            "SELECT count(*), count(DISTINCT chat_id || ':' || source_message_id) "
            "FROM tickets WHERE channel = 'bridge'").fetchone()
    return int(tickets), int(distinct)


async def run(n: int, conc: int, tmp: Path) -> dict[str, Any]:
    async with FakeConnector(SECRET.encode()) as connector:
        serve = Serve(tmp, connector.callback_url)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                                     connector=aiohttp.TCPConnector(limit=2 * conc))
        try:
            await serve.ready(http)
            return await measure(n, conc, serve, connector, http)
        finally:
            await http.close()
            rc = await serve.stop()
            if rc not in (0, None):
                print(f"serve ended with {rc}:\n{serve.tail()}")


async def measure(n: int, conc: int, serve: Serve, connector: FakeConnector,
                  http: aiohttp.ClientSession) -> dict[str, Any]:
    url = serve.base + PATH
    print(f"run_bot.py serve (pid {serve.proc.pid}), bridge only, sample county; n={n}, "
          f"concurrency {conc}, {GROUPS} group chats, warm-up {WARM_UP} messages first")
    # the baseline first: it also warms the HTTP stack
    refused_secs, refused = await post_all(http, url, signed(make_bodies(1_000_000, n), True),
                                           conc)
    base = figures("refused", conc, refused_secs, refused)
    refused_401 = sum(1 for r in refused if r.status == 401)

    await post_all(http, url, signed(make_bodies(0, WARM_UP)), conc)
    bodies = make_bodies(WARM_UP, n)
    reqs = signed(bodies)
    secs, replies = await post_all(http, url, reqs, conc)
    bridge = figures("bridge", conc, secs, replies)
    ok = sum(1 for r in replies if r.status == 200)

    again = bodies[-RETRIED:]
    _, retried = await post_all(http, url, signed([b for b in again for _ in (1, 2)]), conc)
    retried_dup = sum(1 for r in retried if r.status == 200 and '"duplicate": true' in r.body)
    retried_ok = sum(1 for r in retried if r.status == 200)

    await asyncio.sleep(2.0)  # let the outbox post some answers, for the figure below
    tickets, distinct = counts(serve.db)
    reports = WARM_UP + n
    duplicates, missing = tickets - distinct, reports - distinct
    print(f"answers: {ok}/{n} 200; retries of committed messages: {retried_ok}/{2 * RETRIED} "
          f"200, {retried_dup} of them told `duplicate` (all should be)")
    print(f"tickets {tickets} for {reports} reports (warm-up included): duplicates "
          f"{duplicates}, missing {missing}; the connector got {len(connector.received)} "
          f"signed answers so far ({connector.refused} with a bad signature)")
    print(f"refused answered {refused_401}/{n} with 401: HTTP and a refusal cost "
          f"{1000 / base['per_s']:.2f} ms a message of the {1000 / bridge['per_s']:.2f} ms "
          f"the whole path costs at conc {conc}; the bridge runs at "
          f"{bridge['per_s'] / base['per_s']:.0%} of that baseline")
    return {"bridge_msgs_per_s": round(bridge["per_s"]), "p50_ms": round(bridge["p50"], 1),
            "p95_ms": round(bridge["p95"], 1), "p99_ms": round(bridge["p99"], 1),
            "duplicates": duplicates, "missing": missing, "answered_200": ok,
            "retries_200": retried_ok, "retries_duplicate": retried_dup,
            "refused_msgs_per_s": round(base["per_s"]),
            "refused_p99_ms": round(base["p99"], 1), "n": n, "conc": conc}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--conc", type=int, default=CONC)
    args = ap.parse_args()
    if args.n < RETRIED:
        ap.error(f"--n must be at least {RETRIED}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    try:
        result = asyncio.run(asyncio.wait_for(run(args.n, args.conc, tmp), RUN_LIMIT_S))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
