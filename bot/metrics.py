"""/metrics for one App: Prometheus text from its own CollectorRegistry (never the global one).

What lives in the database (tickets by state, the outbox, open tickets past their deadlines,
escalations) is read when scraped, with a few indexed queries; every instance on one database
reports the same values there, so aggregate those with max(), not sum(). Intake latency (a
report received -> its batch committed) and the channels' health are this process's own.
Labels are states, statuses, levels, outcomes and channel names only: never a person.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.intake.writer import IntakeOutcome
from bot.messages import Inbound
from models.enums import OPEN_STATES, OutboxStatus, TicketState
from models.tickets import Outbox, Ticket, TicketEvent

if TYPE_CHECKING:
    from bot.app import App

__all__ = ["CONTENT_TYPE", "Metrics", "metrics_for"]

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
NS = "gridintake"
# a batch commits in milliseconds; seconds mean the writer is queued up or the disk is slow
INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNSENT = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)
WATCHED = (*UNSENT, OutboxStatus.DEAD.value)  # sent and coalesced rows are the bulk: not read
_LEVEL = re.compile(r"level (\d+)")  # the sweeper's note on an escalate event

Submit = Callable[..., Awaitable[IntakeOutcome]]


@dataclass(slots=True)
class Snapshot:
    """The database's side of one scrape."""

    tickets: dict[str, int] = field(default_factory=dict)
    breached: dict[int, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    retrying: int = 0
    oldest: datetime | None = None


class Metrics:
    """The registry one App serves at /metrics."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        self.intake_latency = Histogram(
            f"{NS}_intake_latency_seconds",
            "A message handed to intake until its batch committed, by what it became.",
            ["outcome"], buckets=INTAKE_BUCKETS, registry=self.registry)
        self._snapshot: Snapshot | None = None
        self._event_cursor: int | None = None  # escalations are counted from the first scrape
        self._escalations: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self.registry.register(_Collector(self))

    async def render(self) -> bytes:
        async with self._lock:  # one read at a time, so no escalation is counted twice
            try:
                async with self.app.deps.reader()() as s:
                    snapshot: Snapshot | None = await self._read(s)
            except Exception as e:
                log.warning("metrics: database unreachable (%s)", type(e).__name__)
                snapshot = None
            # no await from here to the text: another scrape cannot swap the snapshot midway
            self._snapshot = snapshot
            return generate_latest(self.registry)

    async def _read(self, s: AsyncSession) -> Snapshot:
        snap = Snapshot()
        # GROUP BY over ix_tickets_state reads the index, not the rows: ~60 ms at 1M tickets
        for state, n in await s.execute(
                select(Ticket.state, func.count()).group_by(Ticket.state)):
            snap.tickets[state] = n
        for level, n in await s.execute(
                select(Ticket.escalation_level, func.count())
                .where(Ticket.state.in_([x.value for x in OPEN_STATES]),
                       Ticket.escalation_level > 0)
                .group_by(Ticket.escalation_level)):
            snap.breached[level] = n
        oldest: list[datetime] = []
        for status, n, first, failed in await s.execute(
                select(Outbox.status, func.count(), func.min(Outbox.created_at),
                       func.count().filter(Outbox.last_error.is_not(None)))
                .where(Outbox.status.in_(WATCHED)).group_by(Outbox.status)):
            snap.outbox[status] = n
            if status in UNSENT and first is not None:
                oldest.append(first)
            if status == OutboxStatus.PENDING:  # a failed try puts its row back to pending
                snap.retrying = failed
        snap.oldest = min(oldest, default=None)
        await self._count_escalations(s)
        return snap

    async def _count_escalations(self, s: AsyncSession) -> None:
        """Escalate events written since the last scrape: a range of the primary key.

        On PostgreSQL an event whose transaction commits after a higher id was already read is
        not counted: a sweep is one short transaction, so that is rare, and it is a gauge's
        (sla_breached_tickets) job to be exact."""
        if self._event_cursor is None:
            self._event_cursor = await s.scalar(select(func.max(TicketEvent.id))) or 0
            return
        rows = (await s.execute(
            select(TicketEvent.id, TicketEvent.note, Ticket.escalation_level)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(TicketEvent.id > self._event_cursor, TicketEvent.kind == "escalate")
            .order_by(TicketEvent.id))).all()
        for event_id, note, current in rows:
            said = _LEVEL.search(note or "")
            level = int(said.group(1)) if said else current
            self._escalations[level] = self._escalations.get(level, 0) + 1
            self._event_cursor = event_id
        newest = await s.scalar(select(func.max(TicketEvent.id)))
        self._event_cursor = max(self._event_cursor, newest or 0)

    def collect(self) -> Iterable[Metric]:
        yield from self._database()
        yield from self._channels()

    def _database(self) -> Iterable[Metric]:
        snap = self._snapshot
        up = GaugeMetricFamily(f"{NS}_database_up", "1 when this scrape could read the database.")
        up.add_metric([], 0 if snap is None else 1)
        yield up
        if snap is None:
            return
        tickets = GaugeMetricFamily(f"{NS}_tickets", "Tickets by state.", labels=["state"])
        for state in TicketState:
            tickets.add_metric([state.value], snap.tickets.get(state.value, 0))
        yield tickets
        breached = GaugeMetricFamily(
            f"{NS}_sla_breached_tickets",
            "Open tickets past a deadline, by the escalation level they reached.",
            labels=["level"])
        for level in sorted({1, 2, 3, *snap.breached}):
            breached.add_metric([str(level)], snap.breached.get(level, 0))
        yield breached
        escalations = CounterMetricFamily(
            f"{NS}_sla_escalations", "SLA breaches (escalations) since this process first "
            "served /metrics, by level.", labels=["level"])
        for level in sorted({1, 2, 3, *self._escalations}):
            escalations.add_metric([str(level)], self._escalations.get(level, 0))
        yield escalations
        yield from _outbox(snap, self.app.deps.clock())

    def _channels(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(f"{NS}_channel_up",
                               "1 unless the channel's intake is stuck (see /healthz).",
                               labels=["channel", "mode"])
        lag = GaugeMetricFamily(f"{NS}_sync_lag_seconds",
                                "Seconds since a pulling channel's last complete sync "
                                "(since start before the first).", labels=["channel"])
        for name, ch in self.app.health.channels.items():
            up.add_metric([name, ch.mode], 0 if ch.problem() else 1)
            if ch.success == "sync":
                lag.add_metric([name], ch.quiet_for())
        yield up
        yield lag


def _outbox(snap: Snapshot, now: datetime) -> Iterable[Metric]:
    depth = GaugeMetricFamily(f"{NS}_outbox_depth", "Messages waiting to be sent or being sent.")
    depth.add_metric([], sum(snap.outbox.get(x, 0) for x in UNSENT))
    yield depth
    age = GaugeMetricFamily(f"{NS}_outbox_oldest_age_seconds",
                            "Age of the oldest message not yet sent (0 when none).")
    age.add_metric([], 0.0 if snap.oldest is None else
                   max(0.0, (now - snap.oldest).total_seconds()))
    yield age
    failed = GaugeMetricFamily(f"{NS}_outbox_failed",
                               "Messages whose last send failed, waiting for another try.")
    failed.add_metric([], snap.retrying)
    yield failed
    dead = GaugeMetricFamily(f"{NS}_outbox_dead_lettered",
                             "Messages given up on (dead letters) in the outbox.")
    dead.add_metric([], snap.outbox.get(OutboxStatus.DEAD.value, 0))
    yield dead


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect()


def _outcome(out: IntakeOutcome, report: bool) -> str:
    if out.duplicate:
        return "duplicate"
    if not report:
        return "media"
    return "folded" if out.folded else "held" if out.held else "empty" if out.empty \
        else "report"


class _TimedSubmit:
    """The App's IntakeWriter.submit, timed: what Core.on_message awaits for a report."""

    def __init__(self, submit: Submit, metrics: Metrics) -> None:
        self._submit, self.metrics = submit, metrics

    async def __call__(self, inbound: Inbound, *, report: bool) -> IntakeOutcome:
        start, outcome = time.perf_counter(), "error"
        try:
            out = await self._submit(inbound, report=report)
            outcome = _outcome(out, report)
            return out
        finally:
            self.metrics.intake_latency.labels(outcome).observe(time.perf_counter() - start)


def metrics_for(app: App) -> Metrics:
    """The App's Metrics, made on first use: one registry per App, however many web apps."""
    timed = vars(app.intake).get("submit")
    if isinstance(timed, _TimedSubmit):
        return timed.metrics
    metrics = Metrics(app)
    # observed from outside the writer, as a caller sees it, until App owns its Metrics
    setattr(app.intake, "submit", _TimedSubmit(app.intake.submit, metrics))  # noqa: B010
    return metrics
