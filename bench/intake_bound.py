"""How far faster inserts could take intake: the same run with and without the bulk inserts.

Not a mode of the service. In one process, interleaved, each on a fresh SQLite file:
  intake    - bench/intake.py's concurrency-32 phase, unchanged
  no-insert - the same, with the four bulk inserts of a batch (tickets, events, inbound log,
              outbox) skipped: every other statement, the routing, the texts and the row
              values are still made. No insert can be cheaper than none, so this is an upper
              bound for any way of writing those rows.
  ceiling   - the same Dispatcher and routers with a core that does nothing
Usage: python bench/intake_bound.py [--n 3000] [--rounds 3]
Last line: one JSON object {reports_per_s, no_insert_per_s, ceiling_per_s, share, bound_share}
(medians over the rounds; shares are of the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import intake as bench
from sqlalchemy import Connection

from bot.intake import batch


class _Returned:
    def __init__(self, rows: list[tuple[str, int]]) -> None:
        self._rows = rows

    def all(self) -> list[tuple[str, int]]:
        return self._rows


@contextlib.contextmanager
def inserts_skipped() -> Iterator[None]:
    real = Connection.execute
    skipped = {id(s) for s in (batch._INSERT_EVENTS, batch._INSERT_OUTBOX,
                               batch._INSERT_LOG)}
    ids = itertools.count(1)

    def execute(self: Connection, stmt: Any, params: Any = None, *a: Any, **kw: Any) -> Any:
        if id(stmt) in skipped:
            return None
        if stmt is batch._INSERT_TICKETS:
            return _Returned([(row["number"], next(ids)) for row in params])
        return real(self, stmt, params, *a, **kw)

    Connection.execute = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        Connection.execute = real  # type: ignore[method-assign]


async def intake_rate(n: int) -> float:
    app, dp, bot, chats = await bench.county_app(Path(tempfile.mkdtemp(prefix="bench-bound-")))
    try:
        updates = bench.make_updates(bot, n, 1, chats)
        gc.freeze()
        secs, _ = await bench.feed(dp, bot, updates, 32)
        return n / secs
    finally:
        await app.close()


async def run(n: int, rounds: int) -> dict[str, Any]:
    real: list[float] = []
    bound: list[float] = []
    ceiling: list[float] = []
    for r in range(rounds):
        real.append(await intake_rate(n))
        with inserts_skipped():
            bound.append(await intake_rate(n))
        ceiling.append(await bench.ceiling_rate(n, 32))
        print(f"round {r + 1}: intake {real[-1]:6.0f}/s   no-insert {bound[-1]:6.0f}/s   "
              f"ceiling {ceiling[-1]:6.0f}/s   shares {real[-1] / ceiling[-1]:.0%} / "
              f"{bound[-1] / ceiling[-1]:.0%}")
    med = statistics.median
    out = {"reports_per_s": round(med(real)), "no_insert_per_s": round(med(bound)),
           "ceiling_per_s": round(med(ceiling)),
           "share": round(med(a / c for a, c in zip(real, ceiling, strict=True)), 3),
           "bound_share": round(med(b / c for b, c in zip(bound, ceiling, strict=True)), 3)}
    print(f"median: intake is {out['share']:.0%} of the ceiling; with no inserts at all it "
          f"would be {out['bound_share']:.0%}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.n, args.rounds))))


if __name__ == "__main__":
    main()
