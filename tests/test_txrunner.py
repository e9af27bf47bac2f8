"""models.db.TxRunner: a synchronous function in one transaction, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from models.db import GroupCommit, TxRunner, make_engine
from models.tickets import NewTicket, Ticket
from tests.pg import fresh_database


async def _with_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))


def _insert(body: str, then_fail: bool = False) -> Callable[[Connection], int]:
    def run(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": body})
        if then_fail:
            raise RuntimeError("after the insert")
        return conn.execute(text("SELECT count(*) FROM t")).scalar_one()
    return run


async def _bodies(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT body FROM t ORDER BY id"))).scalars())


async def test_sqlite_file_commits_in_the_writer_thread_and_rolls_back_on_error(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await _with_table(engine)
    run = TxRunner(engine)
    threads: list[str] = []

    def where(conn: Connection) -> int:
        threads.append(threading.current_thread().name)
        return _insert("a")(conn)

    try:
        assert await run(where) == 1
        with pytest.raises(RuntimeError):
            await run(_insert("b", then_fail=True))
        assert await _bodies(engine) == ["a"]  # seen by the service's own async engine
        assert threads and threads[0].startswith("db-writer")
    finally:
        await run.close()
        await engine.dispose()


async def test_sqlite_batch_holds_the_write_lock_from_its_first_statement(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a batch that reads first can't lose its snapshot to another writer."""
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await _with_table(engine)
    run = TxRunner(engine)
    outcome: list[str] = []

    def read_then_probe(conn: Connection) -> None:
        conn.execute(text("SELECT count(*) FROM t")).scalar_one()
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            outcome.append("other writer got in")
        except sqlite3.OperationalError as e:
            outcome.append(str(e))
        finally:
            other.close()

    try:
        await run(read_then_probe)
        assert outcome == ["database is locked"]
    finally:
        await run.close()
        await engine.dispose()


async def test_memory_database_runs_on_the_async_engine() -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    await _with_table(engine)
    run = TxRunner(engine)
    try:
        assert await run(_insert("m")) == 1
        assert await _bodies(engine) == ["m"]
    finally:
        await run.close()
        await engine.dispose()


async def test_postgresql_runs_through_the_async_driver() -> None:
    async with fresh_database("txrunner") as url:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id SERIAL PRIMARY KEY, body TEXT)"))
        run = TxRunner(engine)
        try:
            results = await asyncio.gather(*(run(_insert(f"p{i}")) for i in range(5)))
            assert all(1 <= n <= 5 for n in results)  # each saw its own row at least
            with pytest.raises(RuntimeError):
                await run(_insert("x", then_fail=True))
            assert sorted(await _bodies(engine)) == [f"p{i}" for i in range(5)]
        finally:
            await run.close()
            await engine.dispose()


class _Bodies:
    """A GroupCommit's write: one row per item; the first call can be held in its thread."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.go = threading.Event()
        self.go.set()

    def __call__(self, conn: Connection, items: list[str]) -> list[int]:
        self.calls.append(list(items))
        self.entered.set()
        self.go.wait(10)
        ids = []
        for body in items:
            if body == "bad":
                raise ValueError("a bad item")
            conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": body})
            ids.append(conn.execute(text("SELECT last_insert_rowid()")).scalar_one())
        return ids

Grouped = tuple[AsyncEngine, "_Bodies", GroupCommit[str, int]]


@pytest.fixture
async def grouped(tmp_path: Path) -> AsyncIterator[Grouped]:
    """A table on an SQLite file, a GroupCommit over it, and its write (which can be held)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await _with_table(engine)
    run = TxRunner(engine)
    write = _Bodies()
    try:
        yield engine, write, GroupCommit(run, write)
    finally:
        await run.close()
        await engine.dispose()


async def test_items_that_arrive_during_a_commit_go_together_in_the_next(grouped: Grouped) -> None:
    engine, write, group = grouped
    write.go.clear()
    first = asyncio.ensure_future(group.add("a"))
    await asyncio.to_thread(write.entered.wait, 10)  # "a" is in the writer thread
    rest = [asyncio.ensure_future(group.add(b)) for b in "bcd"]
    await asyncio.sleep(0.05)
    assert write.calls == [["a"]]  # the others wait for the running commit
    write.go.set()
    assert await first == 1
    assert await asyncio.gather(*rest) == [2, 3, 4]  # each its own result, in order
    assert write.calls == [["a"], ["b", "c", "d"]]
    assert await _bodies(engine) == ["a", "b", "c", "d"]


async def test_a_bad_item_fails_alone_and_the_others_commit(grouped: Grouped) -> None:
    engine, write, group = grouped
    write.go.clear()
    first = asyncio.ensure_future(group.add("a"))
    await asyncio.to_thread(write.entered.wait, 10)
    rest = [asyncio.ensure_future(group.add(b)) for b in ("b", "bad", "c")]
    await asyncio.sleep(0.05)
    write.go.set()
    await first
    got = await asyncio.gather(*rest, return_exceptions=True)
    assert got[0] == 2 and got[2] == 3
    assert isinstance(got[1], ValueError)
    # the batch rolled back, then each item alone
    assert write.calls == [["a"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]
    assert await _bodies(engine) == ["a", "b", "c"]


async def test_an_item_whose_caller_stops_waiting_is_still_written(grouped: Grouped) -> None:
    engine, write, group = grouped
    write.go.clear()
    waiting = asyncio.ensure_future(group.add("kept"))
    await asyncio.to_thread(write.entered.wait, 10)
    waiting.cancel()
    write.go.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await group.add("next") == 2
    assert await _bodies(engine) == ["kept", "next"]


def test_new_ticket_has_exactly_the_ticket_columns() -> None:
    assert {f.name for f in fields(NewTicket)} == set(Ticket.__table__.columns.keys())
