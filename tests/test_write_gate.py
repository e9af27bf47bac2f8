"""models.db's write gate: one process's writers to an SQLite file take turns in arrival order.

Real files, real concurrency. SQLite's busy timeout is set to 0 on every connection here, so a
writer that met the file's write lock held by another would fail at once with "database is
locked" instead of sleeping: every test passing says no writer ever had to.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.db import TxRunner, make_engine, make_sessionmaker, write_gate

WRITERS = 50


def _no_busy_wait(engine: AsyncEngine) -> None:
    def zero(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=0")  # after make_engine's own pragmas
        cur.close()
    event.listen(engine.sync_engine, "connect", zero)


@dataclass
class Db:
    path: Path
    engine: AsyncEngine
    sm: async_sessionmaker[AsyncSession]
    run: TxRunner

    async def log(self) -> list[str]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(text("SELECT who FROM log ORDER BY id"))).scalars())

    async def counter(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT n FROM counter"))).scalar_one())

    def queued(self) -> int:
        """Writers waiting at the gate (asyncio.Lock keeps them in `_waiters`)."""
        return write_gate(str(self.path.resolve())).queued()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    path = tmp_path / "gate.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    _no_busy_wait(engine)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO counter VALUES (0)"))
        await conn.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, who TEXT)"))
    run = TxRunner(engine)
    assert run._sync is not None
    event.listen(run._sync, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=0"))
    try:
        yield Db(path, engine, make_sessionmaker(engine), run)
    finally:
        await run.close()
        await engine.dispose()


def _bump(who: str) -> Callable[[Connection], None]:
    """Read, then write what was read plus one: lost updates show in the final count."""
    def run(conn: Connection) -> None:
        n = conn.execute(text("SELECT n FROM counter")).scalar_one()
        conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        conn.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": who})
    return run


async def _bump_in_session(db: Db, who: str, before_write: Awaitable[Any] | None = None
                           ) -> None:
    async with db.sm() as s, s.begin():
        n = (await s.execute(text("SELECT n FROM counter"))).scalar_one()
        if before_write is not None:
            await before_write
        await s.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        await s.execute(text("INSERT INTO log (who) VALUES (:w)"), {"w": who})


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not cond():  # noqa: ASYNC110 (the gate has no event to wait on)
            await asyncio.sleep(0.001)


async def _queued(db: Db, n: int) -> None:
    await _until(lambda: db.queued() == n)


async def test_concurrent_writers_all_commit_without_meeting_the_lock(db: Db) -> None:
    """Sessions on the event loop and the writer thread's batches, all at once."""
    jobs = [_bump_in_session(db, f"s{i}", asyncio.sleep(0)) if i % 2
            else db.run(_bump(f"t{i}")) for i in range(WRITERS)]
    await asyncio.gather(*jobs)
    assert await db.counter() == WRITERS
    assert sorted(await db.log()) == sorted(
        f"s{i}" if i % 2 else f"t{i}" for i in range(WRITERS))


async def test_writers_take_turns_in_arrival_order(db: Db) -> None:
    opened = asyncio.Event()
    go = asyncio.Event()

    async def first() -> None:
        async with db.sm() as s, s.begin():
            await s.execute(text("INSERT INTO log (who) VALUES ('first')"))
            opened.set()
            await go.wait()

    tasks = [asyncio.create_task(first())]
    await opened.wait()
    for i in range(WRITERS):
        # a session waits at the gate holding a pooled connection (15 at most): mostly
        # thread writers, so the sessions in line stay within the pool
        job = _bump_in_session(db, f"w{i}") if i % 4 == 0 else db.run(_bump(f"w{i}"))
        tasks.append(asyncio.ensure_future(job))
        await _queued(db, i + 1)  # in line before the next one comes
    go.set()
    await asyncio.gather(*tasks)
    assert await db.log() == ["first"] + [f"w{i}" for i in range(WRITERS)]


async def test_a_failed_transaction_gives_the_gate_back(db: Db) -> None:
    def fails(conn: Connection) -> None:
        _bump("thread-failed")(conn)
        raise RuntimeError("after the write")

    with pytest.raises(RuntimeError):
        await db.run(fails)
    with pytest.raises(RuntimeError):
        async with db.sm() as s, s.begin():
            await s.execute(text("INSERT INTO log (who) VALUES ('session-failed')"))
            raise RuntimeError("after the write")
    async with db.sm() as s:  # a read that never says begin or commit: closed, rolled back
        await s.execute(text("SELECT n FROM counter"))
    await asyncio.wait_for(_bump_in_session(db, "after"), 5)
    assert await db.log() == ["after"]


async def test_a_cancelled_writer_gives_the_gate_back(db: Db) -> None:
    inside = asyncio.Event()

    async def stuck() -> None:
        async with db.sm() as s, s.begin():
            await s.execute(text("INSERT INTO log (who) VALUES ('cancelled')"))
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await inside.wait()
    waiting = asyncio.create_task(_bump_in_session(db, "next"))
    await _queued(db, 1)
    task.cancel()
    await asyncio.wait_for(waiting, 5)
    assert await db.log() == ["next"]


async def test_the_thread_keeps_the_gate_until_its_transaction_ends(db: Db) -> None:
    """A caller that stops waiting does not stop the thread: the next writer waits for it."""
    started, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(conn: Connection) -> None:
        _bump("thread")(conn)
        loop.call_soon_threadsafe(started.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(5)

    caller = asyncio.create_task(db.run(slow))
    await started.wait()
    caller.cancel()
    nxt = asyncio.create_task(_bump_in_session(db, "next"))
    await _queued(db, 1)
    release.set()
    await asyncio.wait_for(nxt, 5)
    assert await db.log() == ["thread", "next"]
    assert await db.counter() == 2


async def _holding(db: Db) -> tuple[asyncio.Task[None], asyncio.Event]:
    """A session that has the write gate (it wrote 'holder') until the event is set."""
    opened, go = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with db.sm() as s, s.begin():
            await s.execute(text("INSERT INTO log (who) VALUES ('holder')"))
            opened.set()
            await go.wait()

    task = asyncio.create_task(holder())
    await opened.wait()
    return task, go


async def test_reads_on_the_reading_engine_pass_a_held_gate(db: Db) -> None:
    reader = make_engine(f"sqlite+aiosqlite:///{db.path}", reads_only=True)
    task, go = await _holding(db)
    try:
        async with reader.connect() as conn:
            n = await asyncio.wait_for(conn.scalar(text("SELECT n FROM counter")), 5)
        assert n == 0
    finally:
        go.set()
        await task
        await reader.dispose()


def _second_runner(db: Db) -> TxRunner:
    """Another writer thread on the same file (as intake, the outbox and an account each have)."""
    run = TxRunner(db.engine)
    assert run._sync is not None
    event.listen(run._sync, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=0"))
    return run


async def test_the_gate_passes_between_writer_threads_without_the_event_loop(db: Db) -> None:
    """The next call in line starts when the last one ends, even while the loop is busy."""
    other = _second_runner(db)
    go, second_ran = threading.Event(), threading.Event()

    def first(conn: Connection) -> None:
        _bump("first")(conn)
        go.wait(5)

    def second(conn: Connection) -> None:
        _bump("second")(conn)
        second_ran.set()

    try:
        a = asyncio.ensure_future(db.run(first))
        await _until(lambda: db.queued() == 0 and not a.done())
        b = asyncio.ensure_future(other(second))
        await _queued(db, 1)
        go.set()
        # the loop is blocked here: with hand-overs through it, `second` could not start
        assert second_ran.wait(5)
        await asyncio.gather(a, b)
        assert await db.log() == ["first", "second"]
    finally:
        await other.close()


async def test_a_call_still_in_line_when_its_caller_stops_waiting_never_runs(db: Db) -> None:
    task, go = await _holding(db)
    dropped = asyncio.ensure_future(db.run(_bump("dropped")))
    kept = asyncio.ensure_future(db.run(_bump("kept")))
    await _queued(db, 2)
    dropped.cancel()
    await _queued(db, 1)
    go.set()
    await asyncio.wait_for(asyncio.gather(task, kept), 5)
    assert dropped.cancelled()
    assert await db.log() == ["holder", "kept"]
    assert await db.counter() == 1


async def test_a_call_kept_in_line_too_long_fails_as_locked_and_never_runs(
        db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.db.GATE_TIMEOUT_S", 0.2)
    task, go = await _holding(db)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await db.run(_bump("late"))
    assert db.queued() == 0
    go.set()
    await task
    await asyncio.wait_for(db.run(_bump("after")), 5)
    assert await db.log() == ["holder", "after"]
