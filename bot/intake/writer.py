"""Is this a report? -> ticket -> route -> assign, written in group commits.

Concurrent reports are queued and written by one task, many per transaction: the storage
floor is a commit, not a row, so batching is what lets intake keep up with the platform.
Each caller awaits its own result, which resolves only after the commit (persist before act).
The batch itself is bot.intake.batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.county.index import CountyHolder
from bot.intake.batch import Batch, IntakeOutcome
from bot.messages import Inbound
from bot.notify import compose
from bot.tickets.sla import SlaConfig
from models.db import TxRunner

__all__ = ["IntakeOutcome", "IntakeWriter"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    inbound: Inbound
    report: bool
    future: asyncio.Future[IntakeOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class IntakeWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        county: CountyHolder,
        sla: SlaConfig,
        *,
        prefix: str,
        media_window: timedelta,
        clock: Callable[[], datetime],
        follow_link: compose.FollowLink,
        on_commit: Callable[[], None] = lambda: None,
        batch_max: int = 64,
        repeat_window: timedelta = timedelta(minutes=10),
        per_minute: int = 5,
        duplicate_radius_m: int = 150,
    ) -> None:
        self._repeat_window = repeat_window
        self._per_minute = per_minute
        self._radius_m = duplicate_radius_m
        self._run_tx = TxRunner(engine)
        self._county = county
        self._sla = sla
        self._prefix = prefix
        self._window = media_window
        self._clock = clock
        self._follow = follow_link
        self._on_commit = on_commit
        self._batch_max = batch_max
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._run_tx.close()  # waits for a batch already in the writer thread

    async def submit(self, inbound: Inbound, *, report: bool) -> IntakeOutcome:
        await self.start()
        job = _Job(inbound, report)
        await self._queue.put(job)
        return await job.future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_safely(batch)

    async def _write_safely(self, batch: list[_Job]) -> None:
        try:
            outcomes = await self._write(batch)
        except Exception as exc:
            if len(batch) > 1:
                # one bad item (or a race with another instance) must not fail the others
                for job in batch:
                    await self._write_safely([job])
                return
            log.exception("intake failed for %s", batch[0].inbound.external_id)
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for job, out in zip(batch, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(out)
        self._on_commit()

    async def _write(self, batch: list[_Job]) -> list[IntakeOutcome]:
        work = Batch(self._county.index, self._sla, self._prefix, self._window, self._follow,
                     self._clock(), [(j.inbound, j.report) for j in batch],
                     self._repeat_window, self._per_minute, self._radius_m)
        return await self._run_tx(work.write)
