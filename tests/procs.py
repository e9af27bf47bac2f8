"""Runs the real service (`run_bot.py`) as a subprocess for end-to-end tests.

The FakeBotAPI lives in the test's event loop, so nothing here may block that loop for
long: processes are started with Popen and waited on by polling, HTTP goes through aiohttp.
Every process is logged to a file; `Service.close()` ends them all and prints the logs
(pytest shows them only for a failing test).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.fakes.botapi import FakeBotAPI

REPO = Path(__file__).resolve().parent.parent
TOKEN = "123:ABC"
_T = TypeVar("_T")

# settings a developer's shell might carry that would change what the service does
SCRUB = ("DATABASE_URL", "HTTP_", "TELEGRAM_", "OUTBOX_", "SWEEP_", "PRIVATE_PER_",
          "GROUP_PER_", "GLOBAL_PER_", "LOG_LEVEL", "SAMPLE_DATA", "COUNTY_DIR",
          "TICKET_PREFIX", "LANGUAGE", "TIMEZONE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This process's environment without settings a developer's shell might carry.

    QUIET_HOURS is off: a service started here runs on the real clock, whose hour a test
    cannot choose, and its cards must not wait for the morning when CI runs at night (quiet
    hours have their own tests, on a controllable clock: tests/test_quiet_hours.py)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SCRUB)}
    env["QUIET_HOURS"] = "off"
    return env


def service_env(db: Path, api_base: str, port: int, **extra: str) -> dict[str, str]:
    env = clean_env()
    env.update({
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": api_base,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "TELEGRAM_POLLING_TIMEOUT": "1",
        "OUTBOX_POLL_SECONDS": "0.1",
        "SWEEP_SECONDS": "1",
        "PRIVATE_PER_SECOND": "50",
        "GROUP_PER_MINUTE": "200",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class BotProcess:
    """One `run_bot.py serve`; stdout and stderr go to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "run_bot.py", "serve"], cwd=REPO, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def wait_exit(self, timeout: float) -> int | None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None or time.monotonic() >= deadline:
                return rc
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no final offset confirmation, exactly like a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def stop(self, timeout: float = 10.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM and wait (asynchronously: a polling bot needs the fake to answer)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if await self.wait_exit(timeout) is None:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


class Service:
    """The service under test: its database, port, environment and every process started."""

    def __init__(self, workdir: Path, api: FakeBotAPI, **extra_env: str) -> None:
        self.workdir = workdir
        self.api = api
        self.db = workdir / "db.sqlite"
        self.port = free_port()
        self.env = service_env(self.db, api.base_url, self.port, **extra_env)
        self.procs: list[BotProcess] = []
        self.invite_output: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def current(self) -> BotProcess:
        return self.procs[-1]

    def logs(self) -> str:
        parts = []
        for i, p in enumerate(self.procs):
            parts.append(f"----- serve #{i + 1} (pid {p.pid}, rc {p.returncode}) -----\n{p.log()}")
        return "\n".join([*self.invite_output, *parts])

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.logs().splitlines()[-lines:])

    async def invite(self, role: str, *, grid: str | None = None,
                     community: str | None = None) -> str:
        args = [sys.executable, "run_bot.py", "invite", "--role", role]
        if grid:
            args += ["--grid", grid]
        if community:
            args += ["--community", community]
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        text = out.decode(errors="replace")
        self.invite_output.append(f"----- invite {role} (rc {proc.returncode}) -----\n{text}"
                                  f"{err.decode(errors='replace')[-2000:]}")
        found = re.search(r"^邀请码：(\S+) ", text, re.M)
        assert proc.returncode == 0 and found, f"invite failed:\n{self.invite_output[-1]}"
        return found.group(1)

    async def start(self, timeout: float = 30.0) -> BotProcess:  # noqa: ASYNC109
        """Start `run_bot.py serve` and return once /healthz says ok."""
        n = len(self.procs) + 1
        proc = BotProcess(self.env, self.workdir / f"serve-{n}.log")
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    raise AssertionError(f"serve exited with {proc.returncode}:\n{self.tail()}")
                try:
                    async with http.get(f"{self.base_url}/healthz") as r:
                        if r.status == 200 and (await r.json()).get("ok"):
                            return proc
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"/healthz not ok within {timeout}s:\n{self.tail()}")

    async def close(self) -> None:
        """Kill whatever still runs (a test that cares about a clean stop stops it itself)."""
        for p in self.procs:
            try:
                p.kill()
            except Exception:  # a teardown must end every process, whatever one of them does
                p.proc.kill()
        print(self.logs())

    async def within(self, what: Awaitable[_T]) -> _T:
        """Await a bounded wait; a timeout fails with the service's log attached."""
        try:
            return await what
        except TimeoutError as e:
            raise AssertionError(f"{e}\n--- service log (tail) ---\n{self.tail()}") from None

    async def until(self, check: Callable[[], _T], what: str,
                    timeout: float = 5.0) -> _T:  # noqa: ASYNC109
        """Poll `check` (e.g. a DB query) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout}s\n--- service log (tail) ---\n"
                                     f"{self.tail()}")
            await asyncio.sleep(0.05)

    # -- the database, read from outside ----------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db, timeout=5)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, *params: Any) -> Any:
        rows = self.query(sql, *params)
        return rows[0][0] if rows else None


class WriteLock:
    """Holds SQLite's write lock from the test (WAL: the service still reads, can't commit)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.con: sqlite3.Connection | None = None

    async def acquire(self) -> None:
        def take() -> sqlite3.Connection:
            con = sqlite3.connect(self.db, timeout=10, isolation_level=None,
                                  check_same_thread=False)
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            con.execute("BEGIN IMMEDIATE")
            return con

        self.con = await asyncio.to_thread(take)

    def release(self) -> None:
        if self.con is not None:
            self.con.execute("ROLLBACK")
            self.con.close()
            self.con = None
