"""Engine, sessions and schema upgrade (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import await_only, in_greenlet

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
T = TypeVar("T")
GATE_TIMEOUT_S = 30.0  # as long as SQLite's own busy timeout
_HELD = "grid_intake_write_gate"  # connection info key: the gate this transaction holds


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, reads_only: bool = False, **kw: Any) -> AsyncEngine:
    """The engine; on SQLite `reads_only` gives one whose transactions take no write lock,
    for the checks that decide whether a write transaction is needed at all."""
    if is_sqlite(url):
        db = make_url(url).database
        if db and db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if reads_only:
            return engine
        event.listen(engine.sync_engine, "connect", _no_driver_begin)
        # Every core transaction checks a ticket's state and then writes. The driver's own
        # deferred BEGIN lets two of them read the same state before either writes, so two
        # presses of one button both took effect; taking the write lock at BEGIN makes the
        # check and the write one step (PostgreSQL gets the same from row locks).
        file = _file_of(engine.url)
        if file is None:
            event.listen(engine.sync_engine, "begin", _begin_immediate)
        else:
            _gate_writes(engine.sync_engine, file)
        return engine
    kw.setdefault("pool_size", 10)
    return create_async_engine(url, **kw)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _no_driver_begin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")  # one snapshot for the reads, no write lock


# -- the write gate ------------------------------------------------------------------------
# SQLite has one write lock per file, and a writer that finds it taken sleeps and polls
# (1, 2, 5 ... 100 ms), so under load writers lose turns to sleeping and the lock sits idle
# while they sleep; p99 grew to seconds. Within one process every write transaction on a
# file first takes this FIFO asyncio lock, then BEGIN IMMEDIATE, and gives it back after
# COMMIT or ROLLBACK: writers queue in arrival order and the next starts the moment the
# last ends. BEGIN IMMEDIATE stays for other processes (CLI imports, a second instance).

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = \
    weakref.WeakKeyDictionary()


def _file_of(url: URL) -> str | None:
    db = url.database
    return os.path.realpath(db) if db and db != ":memory:" and not db.startswith("file:") \
        else None


def write_gate(file: str) -> asyncio.Lock:
    """This event loop's gate for the SQLite file `file` (a real path)."""
    per_loop = _gates.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(file, asyncio.Lock())


async def _enter(gate: asyncio.Lock) -> None:
    try:
        async with asyncio.timeout(GATE_TIMEOUT_S):
            await gate.acquire()
    except TimeoutError:
        raise sqlite3.OperationalError(
            "database is locked (this process's other writers held it too long)") from None


class _Held:
    """A held gate, given back once from whichever thread ends the transaction."""

    __slots__ = ("gate", "loop", "thread")

    def __init__(self, gate: asyncio.Lock) -> None:
        self.gate = gate
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()

    def release(self) -> None:
        if threading.get_ident() == self.thread:
            self.gate.release()
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.gate.release)


def _give_back(info: dict[Any, Any] | None) -> None:
    held = info.pop(_HELD, None) if info is not None else None
    if held is not None:
        held.release()


def _gate_writes(engine: Engine, file: str) -> None:
    """Every transaction on `engine` (an async engine's sync face) passes the file's gate."""

    def begin(conn: Connection) -> None:
        if in_greenlet():  # always, on the async driver; the guard keeps await_only honest
            gate = write_gate(file)
            await_only(_enter(gate))
            conn.info[_HELD] = _Held(gate)
        try:
            _begin_immediate(conn)
        except BaseException:
            _give_back(conn.info)
            raise

    # SQLAlchemy's commit and rollback events fire before the statement runs; the gate must
    # open after it, or the next writer's BEGIN IMMEDIATE meets the lock and sleeps
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_conn: Any) -> None:
        try:
            commit(dbapi_conn)
        finally:
            _give_back(_info(dbapi_conn))

    def do_rollback(dbapi_conn: Any) -> None:
        try:
            rollback(dbapi_conn)
        finally:
            _give_back(_info(dbapi_conn))

    dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
    event.listen(engine, "begin", begin)
    # a connection dropped mid-transaction never commits or rolls back through the dialect
    event.listen(engine.pool, "invalidate", lambda _c, rec, _e: _give_back(_info(rec)))
    event.listen(engine.pool, "checkin", lambda _c, rec: _give_back(_info(rec)))


def _info(conn: Any) -> dict[Any, Any] | None:
    try:  # a pool's record or connection; the first connect's ad hoc one has no info
        return conn.info if conn is not None else None
    except (AttributeError, NotImplementedError):
        return None


class TxRunner:
    """Runs a synchronous function in one transaction on a Core `Connection`.

    Through aiosqlite every statement is several hops to its thread and back (cursor,
    execute, fetch, close: ~0.4 ms each time); a batch of a dozen statements pays that a
    dozen times. So on an SQLite file the function runs whole on the file's own sqlite3
    connection in one writer thread: one hop per call, after the file's write gate (the
    gate opens when the thread is done). On other databases it runs on the async engine's
    connection through SQLAlchemy's greenlet bridge.
    """

    def __init__(self, engine: AsyncEngine, *, reads_only: bool = False) -> None:
        """`reads_only`: transactions that only read, in a thread of their own; on SQLite
        they take neither the write lock nor the write gate."""
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._gated = not reads_only
        url = engine.url
        file = _file_of(url)
        self._file = file or ""
        if url.get_backend_name() == "sqlite" and file is not None:
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                connect_args={"timeout": 30, "check_same_thread": False,
                              "isolation_level": None},
                pool_size=1, max_overflow=0)
            event.listen(self._sync, "connect", _sqlite_pragmas)
            # a writer takes the write lock up front: a deferred transaction that reads first
            # fails outright (no busy wait) when another connection commits before its write
            event.listen(self._sync, "begin", _begin_deferred if reads_only else _begin_immediate)
            self._thread = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="db-reader" if reads_only else "db-writer")

    async def __call__(self, fn: Callable[[Connection], T]) -> T:
        if self._sync is None or self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        if not self._gated:
            return await asyncio.wrap_future(self._thread.submit(_in_transaction, self._sync, fn))
        gate = write_gate(self._file)
        await _enter(gate)
        held = _Held(gate)
        try:
            done: Future[T] = self._thread.submit(_in_transaction, self._sync, fn)
        except BaseException:
            held.release()
            raise
        # opened when the thread is done, not when the caller stops waiting (cancelled)
        done.add_done_callback(lambda _f: held.release())
        return await asyncio.wrap_future(done)

    async def close(self) -> None:
        """Waits for a call already in the writer thread, then closes its connection."""
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        if self._sync is not None:
            self._sync.dispose()


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_sync(url: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


async def upgrade(url: str) -> None:
    """Bring the schema to the newest migration (run before anything else touches the DB)."""
    await asyncio.to_thread(upgrade_sync, url)
