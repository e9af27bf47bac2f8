"""Engine, sessions and schema upgrade (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

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
Item = TypeVar("Item")
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
# file first takes this FIFO gate, then BEGIN IMMEDIATE, and gives it back after
# COMMIT or ROLLBACK: writers queue in arrival order and the next starts the moment the
# last ends. BEGIN IMMEDIATE stays for other processes (CLI imports, a second instance).
# A writer in line is a session on the event loop, or a TxRunner call: that one is handed
# the gate by whichever thread gives it back and starts in its own writer thread at once.
# Through the event loop every hand-over waited for the loop's next turns (a few ms under
# load, more than most transactions take), and the write lock sat idle meanwhile.


class _Starter:
    """A TxRunner call in line: `start()` runs it in its writer thread, holding the gate."""

    __slots__ = ("start",)

    def __init__(self, start: Callable[[], object]) -> None:
        self.start = start


class WriteGate:
    """One process's FIFO write gate for one SQLite file, on one event loop.

    Acquired on the loop (`acquire`), or taken in line by a TxRunner call (`enter`);
    released from any thread (`release`), which hands it to the first in line.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._mutex = threading.Lock()
        self._held = False
        self._line: deque[asyncio.Future[None] | _Starter] = deque()

    def queued(self) -> int:
        """Writers waiting in line."""
        return len(self._line)

    async def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._line.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._mutex:
                queued = waiter in self._line
                if queued:
                    self._line.remove(waiter)
            if not queued and not waiter.cancelled():
                self.release()  # handed to us meanwhile: give it on (if cancelled, _wake does)
            raise

    def enter(self, starter: _Starter) -> None:
        """Start `starter` now if the gate is free, else when it reaches the head of the line."""
        with self._mutex:
            if self._held:
                self._line.append(starter)
                return
            self._held = True
        self._start(starter)

    def withdraw(self, starter: _Starter) -> bool:
        """Take `starter` out of line; False if it was started already."""
        with self._mutex:
            try:
                self._line.remove(starter)
            except ValueError:
                return False
        return True

    def release(self) -> None:
        with self._mutex:
            if not self._line:
                self._held = False
                return
            head = self._line.popleft()
        if isinstance(head, _Starter):
            self._start(head)
        elif self._loop.is_closed():
            self.release()  # no one is waiting on a closed loop
        else:
            self._loop.call_soon_threadsafe(self._wake, head)

    def _start(self, starter: _Starter) -> None:
        try:
            starter.start()
        except BaseException:
            self.release()
            raise

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():
            self.release()
        else:
            waiter.set_result(None)


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteGate]] = \
    weakref.WeakKeyDictionary()


def _file_of(url: URL) -> str | None:
    db = url.database
    return os.path.realpath(db) if db and db != ":memory:" and not db.startswith("file:") \
        else None


def write_gate(file: str) -> WriteGate:
    """This event loop's gate for the SQLite file `file` (a real path)."""
    loop = asyncio.get_running_loop()
    per_loop = _gates.setdefault(loop, {})
    gate = per_loop.get(file)
    if gate is None:
        gate = per_loop[file] = WriteGate(loop)
    return gate


async def _enter(gate: WriteGate) -> None:
    try:
        async with asyncio.timeout(GATE_TIMEOUT_S):
            await gate.acquire()
    except TimeoutError:
        raise _locked() from None


def _locked() -> sqlite3.OperationalError:
    return sqlite3.OperationalError(
        "database is locked (this process's other writers held it too long)")


def _give_back(info: dict[Any, Any] | None) -> None:
    gate = info.pop(_HELD, None) if info is not None else None
    if gate is not None:
        gate.release()


def _gate_writes(engine: Engine, file: str) -> None:
    """Every transaction on `engine` (an async engine's sync face) passes the file's gate."""

    def begin(conn: Connection) -> None:
        if in_greenlet():  # always, on the async driver; the guard keeps await_only honest
            gate = write_gate(file)
            await_only(_enter(gate))
            conn.info[_HELD] = gate
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
    connection in one writer thread: one hop per call, started by the write gate when its
    turn comes (the gate opens when the thread is done). On other databases it runs on the
    async engine's connection through SQLAlchemy's greenlet bridge.
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
        return await self._gated_call(write_gate(self._file), self._thread, self._sync, fn)

    @staticmethod
    async def _gated_call(gate: WriteGate, thread: ThreadPoolExecutor, sync: Engine,
                          fn: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if done.done():
                return  # the caller stopped waiting
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(cast(T, result))

        def run() -> None:
            # the gate is given back when the thread is done, not when the caller stops waiting
            try:
                result = _in_transaction(sync, fn)
            except BaseException as e:
                error: BaseException | None = e
                result = None
            else:
                error = None
            finally:
                gate.release()
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, result, error)

        def too_long() -> None:
            if gate.withdraw(starter):
                settle(None, _locked())

        starter = _Starter(lambda: thread.submit(run))
        gate.enter(starter)
        timeout = loop.call_later(GATE_TIMEOUT_S, too_long)
        try:
            return await done
        except asyncio.CancelledError:
            gate.withdraw(starter)  # not started: it never runs
            raise
        finally:
            timeout.cancel()

    async def close(self) -> None:
        """Waits for a call already in the writer thread, then closes its connection."""
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.shutdown)
        if self._sync is not None:
            self._sync.dispose()


def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return fn(conn)


class GroupCommit(Generic[Item, T]):
    """Items written together: `await add(item)` returns once a transaction holding it commits.

    Every write transaction on SQLite waits its turn at the write gate; many small ones (one
    per message sent) keep the gate busy and the lock changes hands each time. Here items
    that arrive while a transaction is running wait for the next one, which takes them all
    (`write` gets them in arrival order and returns one result each). A transaction that
    fails is retried item by item, so one bad item fails alone.
    """

    def __init__(self, run: TxRunner, write: Callable[[Connection, list[Item]], list[T]]) -> None:
        self._run = run
        self._write = write
        self._queue: list[tuple[Item, asyncio.Future[T]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_queue(), name="group commit")
        # shielded: a caller that stops waiting leaves its item to be written all the same
        return await asyncio.shield(done)

    async def _drain_queue(self) -> None:
        batch: list[tuple[Item, asyncio.Future[T]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    _resolve(batch, await self._commit(batch))
                except Exception as e:
                    if len(batch) == 1:
                        _fail(batch, e)
                        continue
                    for one in batch:
                        try:
                            _resolve([one], await self._commit([one]))
                        except Exception as e1:
                            _fail([one], e1)
        except BaseException as e:  # cancelled (the loop is closing): no one waits forever
            _fail(batch + self._queue, e)
            self._queue = []
            raise

    async def _commit(self, batch: list[tuple[Item, asyncio.Future[T]]]) -> list[T]:
        items = [item for item, _ in batch]
        results = await self._run(lambda conn: self._write(conn, items))
        if len(results) != len(items):
            raise ValueError(f"{len(items)} items written but {len(results)} results")
        return results


def _resolve(batch: list[tuple[Any, asyncio.Future[T]]], results: list[T]) -> None:
    for (_, done), result in zip(batch, results, strict=True):
        if not done.done():
            done.set_result(result)


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], e: BaseException) -> None:
    for _, done in batch:
        if done.done():
            continue
        if isinstance(e, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(e)


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
