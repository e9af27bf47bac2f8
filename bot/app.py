"""Assembles the core for one process: DB, county, intake, outbox, sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import Core
from bot.county.index import CountyHolder
from bot.delivery.capabilities import FULL
from bot.delivery.media import MediaStore
from bot.delivery.outbox import OutboxWorker
from bot.deps import Deps
from bot.health import Health
from bot.intake.writer import IntakeWriter
from bot.messages import Sender
from bot.notify.compose import FollowLink
from bot.notify.texts import use_language
from bot.tickets.sla import SlaConfig, parse_quiet_hours
from bot.tickets.sweeper import run_sweeper
from config.settings import Settings
from models.base import utcnow
from models.county import Grid
from models.db import is_sqlite, make_engine, make_sessionmaker, upgrade

log = logging.getLogger(__name__)


def sla_config(settings: Settings) -> SlaConfig:
    quiet_start, quiet_end = parse_quiet_hours(settings.quiet_hours)
    return SlaConfig(
        tz=ZoneInfo(settings.timezone), day_start=settings.work_day_start,
        day_end=settings.work_day_end, ack_hours=settings.ack_hours,
        resolve_work_days=settings.resolve_work_days, route_minutes=settings.route_answer_minutes,
        confirm_days=settings.confirm_days, step_hours=settings.escalation_steps_hours,
        ack_hours_urgent=settings.ack_hours_urgent,
        resolve_hours_urgent=settings.resolve_hours_urgent,
        urgent_categories=settings.urgent_category_set(),
        quiet_start=quiet_start, quiet_end=quiet_end, digest_at=settings.digest_at)


async def prepare_database(settings: Settings) -> None:
    """Migrate, and on an empty database load the configured county (the sample by default)."""
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            grids = await s.scalar(select(func.count()).select_from(Grid))
        if not grids and settings.sample_data:
            from bot.routing.cli import import_dir

            report = await import_dir(settings.database_url, settings.county_dir)
            log.info("loaded county from %s: %s", settings.county_dir, report)
    finally:
        await engine.dispose()


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    deps: Deps
    core: Core
    intake: IntakeWriter
    outbox: OutboxWorker
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    health: Health = field(default_factory=Health)  # the edge reports each channel here
    reader: AsyncEngine | None = None  # deps.read's engine (SQLite)

    def start_background(self, *, outbox: bool = True, sweeper: bool = True) -> None:
        if outbox:
            self.tasks.append(asyncio.create_task(self.outbox.run(self.stop), name="outbox"))
        if sweeper:
            self.tasks.append(asyncio.create_task(
                run_sweeper(self.deps, self.stop, self.settings.sweep_seconds), name="sweeper"))
            self.tasks.append(asyncio.create_task(self._follow_imports(), name="county"))

    async def _follow_imports(self) -> None:
        """Pick up `run_bot.py import` (or another instance's) without a restart."""
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.settings.sweep_seconds)
            if self.stop.is_set():
                return
            try:
                await self.deps.county.refresh()
            except Exception:
                log.exception("county reload failed; keeping the current index")

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        await self.intake.stop()
        await self.engine.dispose()
        if self.reader is not None:
            await self.reader.dispose()


async def build_app(
    settings: Settings,
    senders: Mapping[str, Sender],
    follow_link: FollowLink = lambda _c, _n: None,
    clock: Callable[[], datetime] = utcnow,
) -> App:
    use_language(settings.language)
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    reader = make_engine(settings.database_url, reads_only=True) \
        if is_sqlite(settings.database_url) else None
    media = MediaStore(settings.media_root(), settings.media_max_bytes)
    sm.configure(info={"clock": clock})  # outbox rows queued inside core calls use it
    county = CountyHolder(sm)
    await county.refresh(force=True)
    outbox = OutboxWorker(sm, senders, settings, clock=clock)
    deps = Deps(sm=sm, county=county, sla=sla_config(settings), clock=clock, media=media,
                read=make_sessionmaker(reader) if reader else None,
                follow_link=follow_link, prefix=settings.ticket_prefix,
                invite_ttl_days=settings.invite_ttl_days, wake_outbox=outbox.wake,
                capabilities={name: getattr(s, "capabilities", FULL)
                              for name, s in senders.items()})
    intake = IntakeWriter(
        engine, county, deps.sla, prefix=settings.ticket_prefix,
        media_window=timedelta(seconds=settings.media_window_seconds), clock=clock,
        follow_link=follow_link, on_commit=outbox.wake, batch_max=settings.intake_batch_max,
        repeat_window=timedelta(seconds=settings.repeat_window_seconds),
        per_minute=settings.reports_per_minute,
        duplicate_radius_m=settings.duplicate_radius_m)
    app = App(settings, engine, deps, Core(deps, intake), intake, outbox, reader=reader)
    # everything built so far (routing index, models, libraries) lives as long as the process:
    # keep it out of full collections, which otherwise pause intake for ~200 ms each
    gc.freeze()
    return app
