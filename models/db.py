"""Engine, sessions and schema upgrade (Alembic) for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
T = TypeVar("T")


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
        event.listen(engine.sync_engine, "begin", _begin_immediate)
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


class TxRunner:
    """Runs a synchronous function in one transaction on a Core `Connection`.

    Through aiosqlite every statement is several hops to its thread and back (cursor,
    execute, fetch, close: ~0.4 ms each time); a batch of a dozen statements pays that a
    dozen times. So on an SQLite file the function runs whole on the file's own sqlite3
    connection in one writer thread: one hop per call. On other databases it runs on the
    async engine's connection through SQLAlchemy's greenlet bridge.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                connect_args={"timeout": 30, "check_same_thread": False,
                              "isolation_level": None},
                pool_size=1, max_overflow=0)
            event.listen(self._sync, "connect", _sqlite_pragmas)
            # take the write lock up front: a deferred transaction that reads first fails
            # outright (no busy wait) when another connection commits before its first write
            event.listen(self._sync, "begin", _begin_immediate)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")

    async def __call__(self, fn: Callable[[Connection], T]) -> T:
        if self._sync is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(fn)
        return await asyncio.get_running_loop().run_in_executor(
            self._thread, _in_transaction, self._sync, fn)

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
